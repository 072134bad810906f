//! Live updates: one `EventSource` on the node's push stream (`/api/v1/events/stream`) for the
//! whole app, turned into counters pages watch to reload what changed, without page reloads.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

/// Counters bumped by each applied event of a kind, and whether the stream is connected.
#[derive(Clone, Copy, Debug)]
pub struct Live {
    /// Assets, services, dependencies appearing or expiring, roles and classification rules.
    pub map: RwSignal<u64>,
    /// Traffic on dependencies (every aggregation period).
    pub traffic: RwSignal<u64>,
    /// Advisories raised or resolved.
    pub advisories: RwSignal<u64>,
    /// Alerts and alert rules.
    pub alerts: RwSignal<u64>,
    /// The stream is open.
    pub connected: RwSignal<bool>,
}

impl Live {
    fn counter(&self, kind: &str) -> RwSignal<u64> {
        match kind {
            "dependency.traffic" => self.traffic,
            k if k.starts_with("advisory.") => self.advisories,
            k if k.starts_with("alert") => self.alerts,
            _ => self.map,
        }
    }
}

/// Opens the stream and provides [`Live`] to every page. The browser reconnects by itself after
/// an error; `connected` follows it.
pub fn provide() {
    let live = Live {
        map: RwSignal::new(0),
        traffic: RwSignal::new(0),
        advisories: RwSignal::new(0),
        alerts: RwSignal::new(0),
        connected: RwSignal::new(false),
    };
    provide_context(live);
    let Ok(source) = EventSource::new("/api/v1/events/stream") else {
        return;
    };
    for kind in proto::event::EVENT_KINDS {
        let counter = live.counter(kind);
        let on_event = Closure::<dyn FnMut(MessageEvent)>::new(move |_: MessageEvent| {
            counter.update(|n| *n += 1);
        });
        let _ = source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
        // The listener lives as long as the app.
        on_event.forget();
    }
    let open = Closure::<dyn FnMut()>::new(move || live.connected.set(true));
    source.set_onopen(Some(open.as_ref().unchecked_ref()));
    open.forget();
    let error = Closure::<dyn FnMut()>::new(move || live.connected.set(false));
    source.set_onerror(Some(error.as_ref().unchecked_ref()));
    error.forget();
    SOURCE.with(|s| {
        if let Some(old) = s.borrow_mut().replace(source) {
            old.close();
        }
    });
}

thread_local! {
    /// The open stream, closed on sign-out.
    static SOURCE: std::cell::RefCell<Option<EventSource>> = const { std::cell::RefCell::new(None) };
}

/// Closes the stream (signing out).
pub fn close() {
    SOURCE.with(|s| {
        if let Some(source) = s.borrow_mut().take() {
            source.close();
        }
    });
}
