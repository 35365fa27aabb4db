//! `kurir-portal`: the municipality portal, where municipality IT sign in with their SITHS card
//! and manage their municipality's registration. Its own program and user; it reaches the
//! daemon only through the portal's socket door.

fn main() -> std::process::ExitCode {
    kurir_web::main(kurir_protocol::config::WebDoor::Portal)
}
