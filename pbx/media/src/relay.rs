//! The per-call RTP/RTCP bridge (to be written).
