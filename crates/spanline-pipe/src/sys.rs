//! The system calls std does not offer: handing a descriptor to a child
//! under a fixed number, closing one on exec, making one non-blocking, and
//! running a function when the process exits.
#![allow(unsafe_code)] // the only unsafe code of spanline; each block says why it is sound

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Marks `fd` close-on-exec. An invalid descriptor is left alone.
pub(crate) fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on a descriptor number reads and sets its flags; it
    // touches no memory of ours, and fails harmlessly on a bad descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Makes the child see `from` as descriptor `to`, inheritable, and nothing
/// else changes: `from` itself stays close-on-exec, so no other process
/// spawned meanwhile by another thread inherits the pipe.
pub(crate) fn pass_fd(cmd: &mut Command, from: RawFd, to: RawFd) {
    let hook = move || {
        if from == to {
            // SAFETY: as in `set_cloexec`; clears the flag on our own copy.
            let flags = unsafe { libc::fcntl(to, libc::F_GETFD) };
            // SAFETY: as above.
            if flags < 0 || unsafe { libc::fcntl(to, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0
            {
                return Err(io::Error::last_os_error());
            }
        // SAFETY: dup2 is async-signal-safe and only duplicates descriptors.
        } else if unsafe { libc::dup2(from, to) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe functions may be called: it calls fcntl and dup2
    // only, allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Makes writes to `fd` fail with `WouldBlock` instead of waiting. An
/// invalid descriptor is left alone.
pub(crate) fn set_nonblocking(fd: RawFd) {
    // SAFETY: as in `set_cloexec`: fcntl reads and sets the descriptor's
    // status flags and touches no memory of ours.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// Runs `f` when the process exits normally (`main` returns, or
/// `std::process::exit`). False when it could not be registered.
pub(crate) fn at_exit(f: extern "C" fn()) -> bool {
    // SAFETY: atexit stores a function pointer, valid for the whole
    // program; `f` is a plain Rust function that cannot unwind across the
    // boundary (a panic in an `extern "C"` function aborts).
    unsafe { libc::atexit(f) == 0 }
}
