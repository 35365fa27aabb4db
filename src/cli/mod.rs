//! The command line's side of kurir: each command family in its own file, and the control
//! socket through which commands reach the running daemon (or open the store when none runs).

pub mod control;
pub mod doctor;
pub mod municipality;
pub mod operator;

/// The person at the keyboard: the sudo caller, else the OS account.
pub fn os_user() -> String {
    if let Ok(user) = std::env::var("SUDO_USER") {
        return user;
    }
    // SAFETY: getuid cannot fail; getpwuid returns null or a pointer to a static record that
    // is read at once, before any other call could overwrite it.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid {uid}")
    }
}
