//! [`Memo`]: one slot on each delivery for its consumer's own cache of what it
//! works out from the delivery. Thousands of subscribers may receive one
//! delivery; what the consumer computes for one of them it may keep here for
//! the others. The hub does not know what is kept: the consumer puts one value
//! of its own type in the slot (the API keeps its renderings, by kind of
//! subscriber) and finds it again by that type.
//!
//! The memo lives and dies with the delivery, and a copy of a delivery starts
//! with an empty one: it is a cache, not data.

use std::any::Any;
use std::sync::{Arc, OnceLock};

/// The consumer's cache of one delivery: set once, to a value of one type.
#[derive(Default)]
pub struct Memo {
    slot: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Memo {
    /// The `T` kept in the slot, first put there as `T::default()` if the slot
    /// is empty; `None` when the slot holds another type.
    pub fn get_or_default<T: Any + Send + Sync + Default>(&self) -> Option<&T> {
        self.slot
            .get_or_init(|| Arc::new(T::default()))
            .downcast_ref::<T>()
    }
}

impl Clone for Memo {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.slot.get().is_some() {
            "set"
        } else {
            "empty"
        };
        write!(f, "Memo({state})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot keeps the first type put in it; another type finds nothing,
    /// and a copy starts empty.
    #[test]
    fn a_memo_holds_one_value_of_the_first_type_asked_for_and_copies_empty() {
        let memo = Memo::default();
        let counter = memo.get_or_default::<std::sync::Mutex<u32>>().unwrap();
        *counter.lock().unwrap() += 1;
        assert_eq!(
            *memo
                .get_or_default::<std::sync::Mutex<u32>>()
                .unwrap()
                .lock()
                .unwrap(),
            1
        );
        assert!(memo.get_or_default::<String>().is_none());
        let copy = memo.clone();
        assert!(copy.get_or_default::<String>().is_some());
    }
}
