//! An app's webhook configuration (`PUT /v1/webhook`, gRPC `SetWebhook`, `tern webhook
//! set`): every field a caller writes is checked without panicking; accepted settings
//! written back (`GET /v1/webhook`) are accepted again as the same settings, and survive
//! the JSON they are stored as.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tern_platform::domain::WebhookSettings;
use tern_platform::webhook::{
    check_webhook_url_syntax, settings_of, spec_of, BeforeSendSpec, WebhookSpec, EVENT_TYPES,
};

#[derive(Arbitrary, Debug)]
enum Event {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct BeforeSend {
    enabled: bool,
    sources: Vec<String>,
    types: Vec<String>,
    timeout_ms: u64,
    policy: String,
}

#[derive(Arbitrary, Debug)]
struct Input {
    url: Option<String>,
    events: Vec<Event>,
    before_send: Option<BeforeSend>,
}

fuzz_target!(|input: Input| {
    let url_ok = match &input.url {
        None => true,
        Some(url) => check_webhook_url_syntax(url).is_ok(),
    };
    let spec = WebhookSpec {
        url: input.url,
        events: input
            .events
            .into_iter()
            .map(|e| match e {
                Event::Known(i) => EVENT_TYPES[usize::from(i) % EVENT_TYPES.len()].to_owned(),
                Event::Other(s) => s,
            })
            .collect(),
        before_send: input.before_send.map(|b| BeforeSendSpec {
            enabled: b.enabled,
            sources: b.sources,
            types: b.types,
            timeout_ms: b.timeout_ms,
            policy: b.policy,
        }),
    };
    let Ok(settings) = settings_of(spec) else {
        return;
    };
    let shown = spec_of(&settings);
    let again = settings_of(shown.clone()).unwrap_or_else(|e| panic!("{shown:?} refused: {e}"));
    if url_ok {
        assert_eq!(again, settings, "{shown:?}");
    } else {
        // Only the URL may differ: one that is not shown as written (it carries credentials,
        // or does not parse) is redacted.
        assert_eq!(
            (&again.events, &again.before_send),
            (&settings.events, &settings.before_send)
        );
    }
    let stored = serde_json::to_string(&settings).expect("settings serialise");
    let loaded: WebhookSettings = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
    assert_eq!(loaded, settings, "{stored}");
});
