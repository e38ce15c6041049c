//! What a run owns besides its steps: connections and caches that step types share (the Redis
//! connections of a run, next the SSH sessions and AWS clients). A resource is created on first
//! use, belongs to one run — a plan and the apply after it are two runs — and is closed when
//! that run ends, after `undo` and `finally`, whether it succeeded, failed or was interrupted.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Something a run holds for its steps. `Default` creates it empty (connections open lazily);
/// `close` releases it when the run ends.
pub trait Resource: Default + Send + Sync + 'static {
    /// Releases what the resource holds (closes connections). Called once, when the run ends.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The object-safe face of a resource: closable, and downcastable back to its type.
trait AnyResource: Send + Sync {
    fn close_boxed(&self) -> BoxFuture<'_>;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Resource> AnyResource for T {
    fn close_boxed(&self) -> BoxFuture<'_> {
        Box::pin(self.close())
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The resources of one run, by type, in the order they were first used.
#[derive(Default)]
pub struct Resources {
    open: Mutex<Vec<(TypeId, Arc<dyn AnyResource>)>>,
}

impl Resources {
    /// The run's `T`, created on first use.
    pub fn get<T: Resource>(&self) -> Arc<T> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let found = open
            .iter()
            .find(|(id, _)| *id == TypeId::of::<T>())
            .map(|(_, resource)| Arc::clone(resource));
        let resource = found.unwrap_or_else(|| {
            let created: Arc<dyn AnyResource> = Arc::new(T::default());
            open.push((TypeId::of::<T>(), Arc::clone(&created)));
            created
        });
        resource
            .as_any()
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("resources are stored under their own TypeId"))
    }

    /// Closes every resource, the last created first, and forgets them.
    pub async fn close_all(&self) {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, resource) in open.into_iter().rev() {
            resource.close_boxed().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counter {
        uses: AtomicUsize,
        closed: Arc<AtomicUsize>,
    }

    impl Resource for Counter {
        async fn close(&self) {
            self.closed.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn one_instance_per_type_closed_once() {
        let resources = Resources::default();
        resources
            .get::<Counter>()
            .uses
            .fetch_add(1, Ordering::SeqCst);
        let counter = resources.get::<Counter>();
        assert_eq!(counter.uses.load(Ordering::SeqCst), 1);
        let closed = Arc::clone(&counter.closed);
        resources.close_all().await;
        resources.close_all().await;
        assert_eq!(closed.load(Ordering::SeqCst), 1);
        // After close, a new use starts afresh.
        assert_eq!(resources.get::<Counter>().uses.load(Ordering::SeqCst), 0);
    }
}
