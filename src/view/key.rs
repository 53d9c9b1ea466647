//! Typed view names: a view's name and state type as one constant, so a
//! misspelt name or a wrong type is a compile error instead of a run-time
//! one.

use std::fmt;
use std::marker::PhantomData;

/// A view's name together with its state's type. Declare it once, register
/// the view with [`Builder::view_keyed`](crate::Builder::view_keyed) and
/// read it with [`Runtime::reader_for`](crate::Runtime::reader_for): the
/// compiler checks that the initial state and the reader have the key's
/// type, and nobody retypes the name.
///
/// ```
/// use rwlog::{Event, Recorded, Runtime, View, ViewKey};
///
/// #[derive(Clone)]
/// struct Add(u64);
/// impl Event for Add {}
/// #[derive(Clone, Default)]
/// struct Sum(u64);
/// impl View<Add> for Sum {
///     fn apply(&mut self, e: &Recorded<Add>) { self.0 += e.payload().0 }
/// }
///
/// const SUM: ViewKey<Sum> = ViewKey::new("sum");
///
/// let rt = Runtime::<Add>::builder().view_keyed(SUM, Sum::default()).build()?;
/// let sum = rt.reader_for(SUM)?;                 // a Reader<Sum>: no turbofish, no string
/// let ack = rt.writer().append("n", Add(2))?;
/// assert_eq!(sum.at_least(ack.position)?.0, 2);
/// # Ok::<(), rwlog::Error>(())
/// ```
///
/// ```compile_fail
/// # use rwlog::{Event, Recorded, Runtime, View, ViewKey};
/// # #[derive(Clone)] struct Add(u64);
/// # impl Event for Add {}
/// # #[derive(Clone, Default)] struct Sum(u64);
/// # impl View<Add> for Sum { fn apply(&mut self, e: &Recorded<Add>) { self.0 += e.payload().0 } }
/// # #[derive(Clone, Default)] struct Count(u64);
/// # impl View<Add> for Count { fn apply(&mut self, _: &Recorded<Add>) { self.0 += 1 } }
/// const SUM: ViewKey<Sum> = ViewKey::new("sum");
/// // A Count registered under Sum's key does not compile.
/// let rt = Runtime::<Add>::builder().view_keyed(SUM, Count::default()).build();
/// ```
pub struct ViewKey<V> {
    name: &'static str,
    state: PhantomData<fn() -> V>,
}

impl<V> ViewKey<V> {
    /// The key of the view named `name`, whose state is a `V`.
    pub const fn new(name: &'static str) -> ViewKey<V> {
        ViewKey {
            name,
            state: PhantomData,
        }
    }

    /// The view's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<V> Clone for ViewKey<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for ViewKey<V> {}

impl<V> fmt::Debug for ViewKey<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ViewKey<{}>({:?})",
            std::any::type_name::<V>(),
            self.name
        )
    }
}
