//! Frame any byte stream, fed in two pieces (the first byte picks the split): the items
//! must not depend on the split, and every framed message must be parseable without panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pbx_sip::framing::{StreamItem, next_item};

fn frame(pieces: &[&[u8]]) -> (Vec<StreamItem>, bool) {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match next_item(&mut buf, 2048) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(_) => return (items, true),
            }
        }
    }
    (items, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(stream.len());
    let (whole, whole_err) = frame(&[stream]);
    let (split, split_err) = frame(&[&stream[..cut], &stream[cut..]]);
    if !whole_err && !split_err {
        assert_eq!(whole, split);
    }
    for item in whole {
        if let StreamItem::Message(m) = item {
            let _ = pbx_sip::parse::parse_message(m);
        }
    }
});
