//! [`Views`]: what a delivery looks like to its subscribers, worked out once
//! and shared. Thousands of subscribers may receive one delivery; those that
//! would see it the same way (same fields selected, same redaction) can share
//! one rendering instead of each building its own. The fan-out does not know
//! what a rendering is (the API decides that and what makes two subscribers
//! "the same"): a view is any value, under a key the API chooses.
//!
//! Bounded: at most [`MAX_VIEWS`] per delivery, so a client cannot grow a
//! delivery's memory with endless distinct keys; past that, callers render
//! for themselves, as without the memo. The memo lives and dies with the
//! delivery.

use std::any::Any;
use std::sync::{Arc, Mutex};

use fanout::Delivery;

/// Distinct views kept per delivery.
pub const MAX_VIEWS: usize = 16;

type View = Arc<dyn Any + Send + Sync>;

/// The views of one delivery, by key.
#[derive(Default)]
pub struct Views {
    views: Mutex<Vec<(Arc<str>, View)>>,
}

impl Views {
    /// The views kept on `delivery` (`None` only if its memo holds something
    /// else, which nothing in the API puts there).
    pub fn of(delivery: &Delivery) -> Option<&Views> {
        delivery.memo.get_or_default::<Views>()
    }

    /// The view under `key`, if one was kept and is a `T`.
    pub fn get<T: Any + Send + Sync>(&self, key: &str) -> Option<Arc<T>> {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        let (_, view) = views.iter().find(|(k, _)| &**k == key)?;
        view.clone().downcast::<T>().ok()
    }

    /// Keeps `view` under `key` (unless the key is taken or the memo full).
    pub fn keep<T: Any + Send + Sync>(&self, key: Arc<str>, view: Arc<T>) {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if views.len() < MAX_VIEWS && !views.iter().any(|(k, _)| *k == key) {
            views.push((key, view));
        }
    }
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.views.lock().map(|v| v.len()).unwrap_or_default();
        write!(f, "Views({n})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view is found under its key and type only; the memo keeps at most
    /// MAX_VIEWS and never replaces a kept view.
    #[test]
    fn views_are_kept_by_key_bounded_and_never_replaced() {
        let views = Views::default();
        assert!(views.get::<String>("a").is_none());
        views.keep("a".into(), Arc::new("first".to_string()));
        views.keep("a".into(), Arc::new("second".to_string()));
        assert_eq!(
            views.get::<String>("a").as_deref().map(String::as_str),
            Some("first")
        );
        assert!(views.get::<u32>("a").is_none());
        for n in 0..MAX_VIEWS * 2 {
            views.keep(format!("k{n}").into(), Arc::new(n));
        }
        assert_eq!(
            views
                .get::<usize>(&format!("k{}", MAX_VIEWS - 2))
                .as_deref(),
            Some(&(MAX_VIEWS - 2))
        );
        assert!(views.get::<usize>(&format!("k{}", MAX_VIEWS - 1)).is_none());
    }
}
