//! `kurir-desk`: Bosättningsenheten's dispatch desk, where the agency's staff send decisions
//! and follow them. Its own program and user; it reaches the daemon only through the desk's
//! socket door, which refuses the portal's user.

fn main() -> std::process::ExitCode {
    kurir_web::main(kurir_protocol::config::WebDoor::Desk)
}
