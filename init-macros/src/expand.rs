//! The expansion of `#[init_step]`: checks the function's signature and turns the function into a
//! unit struct that implements `Step`.

use proc_macro2::{Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, Item, ItemFn, PathArguments, ReturnType, Type,
};

use crate::args::{Args, Dur};

/// The crate the generated code names when no `crate = "..."` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DefaultCrate {
    /// `::init_core`, for `init_macros::init_step` and its re-export `init_core::init_step`.
    InitCore,
    /// `::initkit`, for the facade's `initkit::prelude::init_step`.
    Initkit,
}

impl DefaultCrate {
    fn path(self) -> TokenStream {
        match self {
            Self::InitCore => quote!(::init_core),
            Self::Initkit => quote!(::initkit),
        }
    }
}

/// The whole macro: parse, check, expand. Errors become `compile_error!`s next to the user's
/// function, left as written so that the IDE and rustc keep working on it.
pub(crate) fn init_step(
    args: TokenStream,
    item: TokenStream,
    default: DefaultCrate,
) -> TokenStream {
    let func = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => func,
        Ok(_) => {
            let error = syn::Error::new(
                item_span(&item),
                "#[init_step] goes on an `async fn`, e.g. \
                 `#[init_step] async fn migrate(ctx: &Context) -> Result<(), StepError>`",
            );
            return with_error(item, error);
        }
        // Not valid Rust: give it back as it is and let rustc say what is wrong.
        Err(_) => return item,
    };
    let args = Args::parse(args);
    let signature = Signature::check(&func);
    match (args, signature) {
        (Ok(args), Ok(signature)) => generate(&func, &args, &signature, default),
        (Err(mut a), Err(s)) => {
            a.combine(s);
            with_error(item, a)
        }
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => with_error(item, error),
    }
}

fn with_error(mut item: TokenStream, error: syn::Error) -> TokenStream {
    item.extend(error.into_compile_error());
    item
}

/// Where an item that is not a function starts, after its attributes: its keyword (`struct`,
/// `impl`, `pub`, ...).
fn item_span(item: &TokenStream) -> Span {
    let mut tokens = item.clone().into_iter().peekable();
    // An outer attribute is two token trees: `#` and `[...]`.
    while matches!(tokens.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '#') {
        tokens.next();
        tokens.next();
    }
    tokens.next().map_or_else(Span::call_site, |t| t.span())
}

/// What the expansion needs from a function whose signature is right.
struct Signature {
    /// Whether the function takes the `&Context`.
    takes_context: bool,
    /// `T` in `Result<T, E>`, unless it is `()`.
    value: Option<Type>,
    /// `E` (or the whole return type when the `Result` alias has no second argument), for spans.
    error_span: Span,
}

impl Signature {
    /// Checks everything at once; every problem is reported on its own tokens.
    fn check(func: &ItemFn) -> syn::Result<Self> {
        let sig = &func.sig;
        let mut errors: Vec<syn::Error> = Vec::new();

        if sig.asyncness.is_none() {
            errors.push(syn::Error::new(
                sig.fn_token.span,
                format!(
                    "#[init_step] needs an `async fn`: a step runs on the executor's runtime; \
                     write `async fn {}`",
                    sig.ident
                ),
            ));
        }

        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            let message = "#[init_step] functions cannot have generic parameters: the step is \
                           one value, used as `plan.step(name)`; for a configurable step, \
                           implement `Step` on a struct with fields";
            errors.push(if sig.generics.params.is_empty() {
                syn::Error::new_spanned(&sig.generics.where_clause, message)
            } else {
                syn::Error::new_spanned(&sig.generics, message)
            });
        }

        let mut takes_context = false;
        for (index, input) in sig.inputs.iter().enumerate() {
            match input {
                FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                    receiver,
                    "#[init_step] functions cannot take `self`: the function becomes a unit \
                     struct that implements `Step`; for a method, implement `Step` for your \
                     type instead",
                )),
                FnArg::Typed(arg) if index == 0 && is_context_ref(&arg.ty) => {
                    takes_context = true;
                }
                FnArg::Typed(arg) => errors.push(syn::Error::new_spanned(
                    arg,
                    "unsupported parameter: a step function takes no parameters, or one \
                     `ctx: &Context`; read its inputs from the context instead (`ctx.env(..)`, \
                     `ctx.value(..)`, `ctx.get::<T>()`)",
                )),
            }
        }

        let result = match &sig.output {
            ReturnType::Type(_, ty) => result_args(ty),
            ReturnType::Default => None,
        };
        let (value, error_span) = match result {
            Some(parts) => parts,
            None => {
                let message = "#[init_step] functions return a `Result`: write \
                               `-> Result<(), StepError>`, or `-> Result<T, E>` where `T` is \
                               stored in the context for later steps and `E` converts into \
                               `StepError`";
                errors.push(match &sig.output {
                    ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, message),
                    ReturnType::Default => syn::Error::new(sig.paren_token.span.close(), message),
                });
                (None, Span::call_site())
            }
        };

        let mut errors = errors.into_iter();
        match errors.next() {
            None => Ok(Self {
                takes_context,
                value,
                error_span,
            }),
            Some(mut first) => {
                errors.for_each(|e| first.combine(e));
                Err(first)
            }
        }
    }
}

/// `&Context` or `&path::to::Context` (not `&mut`).
fn is_context_ref(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    if reference.mutability.is_some() {
        return false;
    }
    match &*reference.elem {
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Context" && s.arguments.is_none())
        }
        _ => false,
    }
}

/// `T` (`None` for `()`) and the span of `E` in `Result<T, E>` or `some::Result<T>`.
fn result_args(ty: &Type) -> Option<(Option<Type>, Span)> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return None;
    };
    let mut types = generics.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let value = types.next()?;
    let error_span = types.next().map_or_else(|| ty.span(), Spanned::span);
    let unit = matches!(value, Type::Tuple(tuple) if tuple.elems.is_empty());
    Some(((!unit).then(|| value.clone()), error_span))
}

/// `warm_cache` -> `warm-cache`.
fn kebab_case(ident: &Ident) -> String {
    ident
        .unraw()
        .to_string()
        .split('_')
        .filter(|part| !part.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

fn is_doc(attr: &Attribute) -> bool {
    attr.path().is_ident("doc")
}

fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
}

fn duration(krate: &TokenStream, dur: &Dur) -> TokenStream {
    let millis = Literal::u64_unsuffixed(dur.millis);
    quote!(#krate::__private::Duration::from_millis(#millis))
}

fn generate(func: &ItemFn, args: &Args, sig: &Signature, default: DefaultCrate) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| default.path(), ToTokens::to_token_stream);
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let docs = func.attrs.iter().filter(|a| is_doc(a));
    let cfgs: Vec<&Attribute> = func.attrs.iter().filter(|a| is_cfg(a)).collect();
    let rest = func.attrs.iter().filter(|a| !is_doc(a) && !is_cfg(a));
    let fn_sig = &func.sig;
    let block = &func.block;

    let name = match &args.name {
        Some(lit) => lit.to_token_stream(),
        None => Literal::string(&kebab_case(ident)).into_token_stream(),
    };

    let mut retry = TokenStream::new();
    if let Some((retries, lit)) = &args.retries {
        let attempts = Literal::u32_unsuffixed(retries + 1);
        retry.extend(quote_spanned!(lit.span()=> .with_max_attempts(#attempts)));
    }
    if let Some(backoff) = &args.backoff {
        if let Some(initial) = &backoff.initial {
            let d = duration(&krate, initial);
            retry.extend(quote!(.with_initial_delay(#d)));
        }
        if let Some(max) = &backoff.max {
            let d = duration(&krate, max);
            retry.extend(quote!(.with_max_delay(#d)));
        }
    }
    // `wait` starts from the wait policy (unlimited attempts, the wait cadence, a bound on
    // each attempt); the other arguments change it as they change `Policy::new()`.
    let (base_policy, base_retry) = if args.wait.is_some() {
        (quote!(wait), quote!(wait))
    } else {
        (quote!(new), quote!(new))
    };
    let mut policy = TokenStream::new();
    if !retry.is_empty() {
        policy.extend(quote!(.with_retry(#krate::prelude::Retry::#base_retry() #retry)));
    }
    if let Some(timeout) = &args.timeout {
        let d = duration(&krate, timeout);
        policy.extend(quote!(.with_timeout(#d)));
    }
    if let Some(timeout) = &args.attempt_timeout {
        let d = duration(&krate, timeout);
        policy.extend(quote!(.with_attempt_timeout(#d)));
    }
    if args.optional {
        policy.extend(quote!(.with_on_failure(#krate::prelude::OnFailure::Continue)));
    }
    if args.once {
        policy.extend(quote!(.with_once(true)));
    }

    // The generated code's own bindings: prefixed, because a unit struct of the same name in
    // scope (another step) would turn a binding pattern into a struct pattern, and at
    // `mixed_site`, so that they never shadow the user's names.
    let ctx = Ident::new("__init_step_ctx", Span::mixed_site());
    let value = Ident::new("__init_step_value", Span::mixed_site());
    let error = Ident::new("__init_step_error", Span::mixed_site());
    let call = if sig.takes_context {
        quote!(#ident(#ctx).await)
    } else {
        quote!(#ident().await)
    };
    let ok = match &sig.value {
        Some(ty) => {
            // The argument sits on `T`, so a `T` that cannot be stored (not
            // `Send + Sync + 'static`) is reported on the return type.
            let arg = Ident::new(
                "__init_step_value",
                ty.span().resolved_at(Span::mixed_site()),
            );
            quote!(::core::result::Result::Ok(#value) => {
                #ctx.insert(#arg);
                ::core::result::Result::Ok(())
            })
        }
        None => quote!(::core::result::Result::Ok(()) => ::core::result::Result::Ok(())),
    };
    // The argument sits on `E`, so an error type that does not convert is reported there.
    let arg = Ident::new(
        "__init_step_error",
        sig.error_span.resolved_at(Span::mixed_site()),
    );
    let convert = quote!(#krate::prelude::StepError::from_error(#arg));

    let validate = args.validate.as_ref().map(|path| {
        let cx = Ident::new("__init_step_cx", Span::mixed_site());
        // The call sits on the path, so a function of the wrong type is reported there.
        let call = quote_spanned!(path.span()=> #path(#cx));
        quote! {
            fn validate(
                &self,
                #cx: &#krate::prelude::ValidateContext<'_>,
            ) -> ::core::result::Result<(), #krate::prelude::StepError> {
                #call
            }
        }
    });
    let publishes = args.publishes.as_ref().map(|published| {
        let values = published.iter().map(|p| {
            let name = &p.name;
            match &p.keys {
                Some(keys) => quote!(
                    #krate::__private::Publication::new(#name).with_keys([#(#keys),*])
                ),
                None => quote!(#krate::__private::Publication::new(#name)),
            }
        });
        quote! {
            fn publishes(
                &self,
            ) -> ::core::option::Option<#krate::__private::Vec<#krate::__private::Publication>> {
                ::core::option::Option::Some(#krate::__private::vec![#(#values),*])
            }
        }
    });

    quote! {
        #(#docs)*
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #ident;

        #(#cfgs)*
        #[#krate::__private::async_trait]
        impl #krate::prelude::Step for #ident {
            fn name(&self) -> &str {
                #name
            }

            fn policy(&self) -> #krate::prelude::Policy {
                #krate::prelude::Policy::#base_policy() #policy
            }

            #validate

            #publishes

            async fn run(
                &self,
                #ctx: &#krate::prelude::Context,
            ) -> ::core::result::Result<(), #krate::prelude::StepError> {
                #(#rest)*
                #fn_sig #block

                match #call {
                    #ok,
                    ::core::result::Result::Err(#error) => ::core::result::Result::Err(#convert),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream, default: DefaultCrate) -> String {
        init_step(args, item, default).to_string()
    }

    #[test]
    fn names_initkit_or_init_core_by_default_and_the_given_crate_otherwise() {
        let item = quote!(
            async fn warm() -> Result<(), E> {
                Ok(())
            }
        );
        let facade = expand(quote!(), item.clone(), DefaultCrate::Initkit);
        assert!(facade.contains(":: initkit :: prelude :: Step"), "{facade}");
        assert!(!facade.contains("init_core"), "{facade}");

        let core = expand(quote!(), item.clone(), DefaultCrate::InitCore);
        assert!(core.contains(":: init_core :: prelude :: Step"), "{core}");
        assert!(!core.contains("initkit"), "{core}");

        let custom = expand(quote!(crate = "my::kit"), item, DefaultCrate::Initkit);
        assert!(custom.contains("my :: kit :: prelude :: Step"), "{custom}");
        assert!(!custom.contains(":: initkit"), "{custom}");
    }

    #[test]
    fn step_names_are_the_function_name_in_kebab_case() {
        let name = |s: &str| kebab_case(&Ident::new(s, Span::call_site()));
        assert_eq!(name("warm_cache"), "warm-cache");
        assert_eq!(name("_private__step_"), "private-step");
        assert_eq!(name("migrate"), "migrate");
        assert_eq!(
            kebab_case(&Ident::new_raw("type", Span::call_site())),
            "type"
        );
    }

    #[test]
    fn bad_arguments_keep_the_function_as_written() {
        let item = quote!(
            async fn warm() -> Result<(), E> {
                Ok(())
            }
        );
        let out = expand(quote!(retry = 3), item.clone(), DefaultCrate::Initkit);
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("struct"), "{out}");
    }
}
