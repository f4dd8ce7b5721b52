//! The few system calls both sides need beyond what `nix` offers as one call: pidfds, a
//! sequenced-packet socket pair, one message with descriptors attached, closing every
//! descriptor above a number, moving a descriptor to a fixed number, and signal dispositions.
//!
//! System calls go through `nix`'s safe API. The pidfd calls come from `rustix`, because `nix`
//! has no pidfd API; `close_range(2)` is in neither, so it is the one raw `libc` call here.
//! Every function returns `io::Result` with the errno of the failing call; none panics.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigHandler, Signal};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// The most descriptors Linux attaches to one message (`SCM_MAX_FD`). [`recv_with_fds`]
/// leaves room for that many, so the kernel never truncates the control data and every
/// descriptor it installs is owned, and closed, here.
const SCM_MAX_FD: usize = 253;

/// Opens a pidfd for `pid` (close-on-exec).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Sends `signal` to the process behind `pidfd`. Immune to pid reuse.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: Signal) -> io::Result<()> {
    let signal = rustix::process::Signal::from_named_raw(signal as i32)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_send_signal(pidfd, signal)?)
}

/// Whether the process behind `pidfd` has exited (the pidfd polls readable).
pub fn pidfd_exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::ZERO).unwrap_or(0);
    n > 0
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
}

/// Creates a connected pair of close-on-exec `SOCK_SEQPACKET` Unix sockets.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Sends one message with `fds` attached as `SCM_RIGHTS`.
pub fn send_with_fds(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let iov = [IoSlice::new(data)];
    let rights = [ControlMessage::ScmRights(fds)];
    // No control message at all when there is nothing to attach.
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) if n == data.len() => return Ok(()),
            Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "short sendmsg")),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one message into `buf`, with up to `max_fds` descriptors. Returns the number of
/// bytes and the descriptors (close-on-exec). A zero-length read means the peer closed.
pub fn recv_with_fds(
    sock: &OwnedFd,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let too_many = || io::Error::new(io::ErrorKind::InvalidData, "too many descriptors attached");
    let mut cmsg_buf = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => break msg,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    // `cmsgs` fails only when the kernel truncated the control data, which the buffer's size
    // rules out for descriptors.
    for cmsg in msg.cmsgs().map_err(|_| too_many())? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel installed these descriptors in our table for this message
            // (SCM_RIGHTS); nothing else holds them, so each gets exactly one owner here.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    // More than the caller takes: all of them are closed (dropped) with the error.
    if fds.len() > max_fds || msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(too_many());
    }
    Ok((msg.bytes, fds))
}

/// Closes every descriptor from `first` upwards.
pub fn close_from(first: RawFd) -> io::Result<()> {
    // Neither nix nor rustix wraps close_range(2), hence the raw system call.
    // SAFETY: close_range takes three integers and only closes descriptors; every caller owns
    // all descriptors at or above `first` (it runs before anything else has opened one, or
    // right after a fork where nothing above them is in use).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    Errno::result(ret)?;
    Ok(())
}

/// Moves `fd` to descriptor number `target` (without close-on-exec) and returns it.
///
/// `target` must be a number the caller reserves for this purpose: whatever it referred to is
/// closed by `dup2(2)`, and the returned descriptor becomes its owner.
pub fn move_fd(fd: OwnedFd, target: RawFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() == target {
        return Ok(fd);
    }
    // SAFETY: `target` is reserved by the caller (see above), so the returned OwnedFd is the
    // only owner of that number; dup2 clears close-on-exec on the copy.
    let moved = unsafe { nix::unistd::dup2_raw(&fd, target) }?;
    drop(fd);
    Ok(moved)
}

/// Sets the disposition of `signal` to its default or to ignore.
pub fn set_signal(signal: Signal, ignore: bool) -> io::Result<()> {
    let handler = if ignore {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    // SAFETY: nix marks `signal` unsafe because a handler function would run in signal
    // context; SIG_IGN and SIG_DFL run no code of ours.
    unsafe { nix::sys::signal::signal(signal, handler) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (OwnedFd, OwnedFd) {
        seqpacket_pair().unwrap()
    }

    #[test]
    fn a_message_carries_its_descriptors() {
        let (a, b) = pair();
        let (x, y) = pair();
        send_with_fds(&a, b"hello", &[x.as_raw_fd(), y.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 64];
        let (n, fds) = recv_with_fds(&b, &mut buf, 2).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 2);
        // The received copies are new descriptors, close-on-exec, for the same sockets.
        for fd in &fds {
            assert_ne!(fd.as_raw_fd(), x.as_raw_fd());
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
            let flags = nix::fcntl::FdFlag::from_bits_truncate(flags);
            assert!(flags.contains(nix::fcntl::FdFlag::FD_CLOEXEC));
        }
        send_with_fds(&fds[0], b"through", &[]).unwrap();
        let (n, none) = recv_with_fds(&y, &mut buf, 0).unwrap();
        assert_eq!((&buf[..n], none.len()), (&b"through"[..], 0));
    }

    #[test]
    fn more_descriptors_than_asked_for_is_an_error() {
        let (a, b) = pair();
        let (x, _y) = pair();
        send_with_fds(&a, b"m", &[x.as_raw_fd(), x.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 8];
        let e = recv_with_fds(&b, &mut buf, 1).unwrap_err();
        assert_eq!(e.to_string(), "too many descriptors attached");
        send_with_fds(&a, b"m", &[x.as_raw_fd()]).unwrap();
        let e = recv_with_fds(&b, &mut buf, 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_closed_peer_reads_as_zero_bytes() {
        let (a, b) = pair();
        drop(a);
        let mut buf = [0u8; 8];
        let (n, fds) = recv_with_fds(&b, &mut buf, 2).unwrap();
        assert_eq!((n, fds.len()), (0, 0));
        let e = send_with_fds(&b, b"x", &[]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(Errno::EPIPE as i32));
    }

    #[test]
    fn a_pidfd_sees_its_process_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pidfd = pidfd_open(child.id() as i32).unwrap();
        assert!(!pidfd_exited(&pidfd));
        pidfd_send_signal(&pidfd, Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(pidfd_exited(&pidfd));
        assert!(pidfd_open(0).is_err());
    }
}
