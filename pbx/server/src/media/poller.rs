//! Level-triggered epoll and an eventfd waker: the two kernel objects a relay worker
//! sleeps on.
//!
//! Level-triggered on purpose: a worker reads one datagram per readiness event and relies on
//! the next `epoll_wait` reporting the socket again if more are queued. Edge-triggered
//! polling (mio, tokio) must instead read until `EAGAIN`, one wasted `recvfrom` per wake-up,
//! and at 50 packets/s per stream almost every wake-up finds exactly one packet.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::{EventfdFlags, Timespec, eventfd};

pub(crate) struct Poller {
    epoll: OwnedFd,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        Ok(Poller {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
        })
    }

    /// Watches `fd` for input; its events carry `key`.
    pub(crate) fn add(&self, fd: impl AsFd, key: u64) -> io::Result<()> {
        epoll::add(
            &self.epoll,
            fd,
            EventData::new_u64(key),
            EventFlags::IN | EventFlags::ERR,
        )?;
        Ok(())
    }

    /// Stops watching `fd` (closing it would too; this makes it explicit).
    pub(crate) fn remove(&self, fd: impl AsFd) -> io::Result<()> {
        epoll::delete(&self.epoll, fd)?;
        Ok(())
    }

    /// Waits until something is ready or `timeout` passes; fills `events` with what is
    /// ready (each event's `data` is the key it was added with).
    pub(crate) fn wait(&self, events: &mut Vec<Event>, timeout: Duration) -> io::Result<()> {
        events.clear();
        let timeout = Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        match epoll::wait(&self.epoll, spare_capacity(events), Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// An eventfd: other threads wake the worker by writing to it.
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        Ok(Waker {
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
        })
    }

    pub(crate) fn fd(&self) -> impl AsFd + '_ {
        &self.fd
    }

    pub(crate) fn wake(&self) {
        // Only fails if the counter would overflow (it is reset on every wake-up) or the fd
        // is bad; either way the worker is already awake or gone.
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Resets the counter so the level-triggered poller stops reporting it.
    pub(crate) fn reset(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
    }
}
