//! Finding a given error in an error's `source()` chain, looking inside the `io::Error`s that
//! wrap another error (tokio-rustls and hyper-util wrap rustls' errors so, and an `io::Error`'s
//! `source()` skips the error it wraps: it returns that error's own source).

use std::error::Error;
use std::io;

/// The first `T` in `error`'s chain, `error` itself included.
pub(crate) fn find<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// The kind of the first `io::Error` in `error`'s chain (a refused connection, say).
#[cfg(any(feature = "http", feature = "postgres"))]
pub(crate) fn io_kind(error: &(dyn Error + 'static)) -> Option<io::ErrorKind> {
    find::<io::Error>(error).map(io::Error::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[derive(Debug)]
    struct Marker;

    impl std::fmt::Display for Marker {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("marker")
        }
    }

    impl Error for Marker {}

    #[test]
    fn an_error_wrapped_in_an_io_error_in_the_chain_is_found() {
        let wrapped = Outer(io::Error::other(Outer(io::Error::other(Marker))));
        assert!(find::<Marker>(&wrapped).is_some());
        assert!(find::<Marker>(&Outer(io::Error::other("plain text"))).is_none());
    }

    #[cfg(any(feature = "http", feature = "postgres"))]
    #[test]
    fn the_first_io_error_gives_the_kind() {
        let refused = Outer(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(io_kind(&refused), Some(io::ErrorKind::ConnectionRefused));
        assert_eq!(io_kind(&Marker), None);
    }
}
