//! Sans-IO B2BUA calls.
