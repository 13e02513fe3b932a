//! SDP for the B2BUA (to be written).
