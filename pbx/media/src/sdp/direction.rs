//! Direction attributes (RFC 8866 §6.7) and how an answer's direction follows an offer's
//! (RFC 3264 §6.1).

use crate::Direction;

impl Direction {
    /// The direction named by an attribute (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub(crate) fn from_attribute(name: &str) -> Option<Direction> {
        match name.to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// RFC 3264 §8.4 (and RFC 2543 before it): `c=0.0.0.0` means "do not send to me", so a
    /// party declaring it does not receive, whatever its direction attribute says.
    pub(crate) fn without_receive(self) -> Direction {
        Direction::from_flags(self.sends(), false)
    }

    /// RFC 3264 §6.1: an answerer may only send where the offerer receives and receive where it
    /// sends. Clamps a (possibly sloppy) answer direction to what the offer allows.
    pub(crate) fn clamp_answer(self, offered: Direction) -> Direction {
        Direction::from_flags(
            self.sends() && offered.receives(),
            self.receives() && offered.sends(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_follow_offers() {
        use Direction::*;
        assert_eq!(SendRecv.clamp_answer(SendOnly), RecvOnly);
        assert_eq!(SendRecv.clamp_answer(RecvOnly), SendOnly);
        assert_eq!(SendRecv.clamp_answer(Inactive), Inactive);
        assert_eq!(RecvOnly.clamp_answer(SendRecv), RecvOnly);
        assert_eq!(SendRecv.without_receive(), SendOnly);
        assert_eq!(RecvOnly.without_receive(), Inactive);
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_attribute(d.attribute()), Some(d));
        }
        assert_eq!(Direction::from_attribute("SENDONLY"), Some(SendOnly));
    }
}
