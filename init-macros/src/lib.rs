//! `#[init_step]`: turns an `async fn` into an initkit `Step`.

use proc_macro::TokenStream;

/// Turns an `async fn` into a step (being built; see issue 3).
#[proc_macro_attribute]
pub fn init_step(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
