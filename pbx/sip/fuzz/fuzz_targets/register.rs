//! Any message: when it parses as a REGISTER, the registrar rules must decide on it without
//! panicking, against no bindings and against the bindings it would itself create.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pbx_sip::message::Message;
use pbx_sip::registrar::{RegistrarPolicy, process_register};

fuzz_target!(|data: &[u8]| {
    let Ok(Message::Request(request)) = pbx_sip::parse::parse_message(Bytes::copy_from_slice(data)) else {
        return;
    };
    let policy = RegistrarPolicy::default();
    if let Ok(plan) = process_register(1_000, &request, &[], &policy) {
        let _ = plan.response_contacts(1_000);
        let _ = process_register(1_001, &request, &plan.bindings, &policy);
    }
});
