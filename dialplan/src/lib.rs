//! The TOML dialplan: parse, validate, evaluate and trace. Pure: no I/O, no clock.
