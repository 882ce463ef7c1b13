//! The two shapes every platform block repeats: strings FCM enumerates (an enum with an
//! `Other` escape, so that a value this crate does not know yet is still sent), and
//! chainable setters for optional fields.

/// An enum of the strings FCM enumerates for one field, each variant with its wire name,
/// plus `Other(String)` for the rest: read and sent verbatim (the server validates it).
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this crate does not name, sent verbatim.
            Other(String),
        }

        impl $name {
            /// The value as the wire has it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(other) => other,
                }
            }

            /// False for a value FCM does not enumerate. Google's parser reads enum names
            /// in any case (firebase-admin-python sends `android.priority` as `"high"`), so
            /// an `Other` spelling of a known name in another case is known; it is kept as
            /// written, so that it is sent as written.
            pub fn is_known(&self) -> bool {
                match self {
                    Self::Other(other) => [$($wire),*].iter().any(|known| known.eq_ignore_ascii_case(other)),
                    _ => true,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok(Self::from(&*text))
            }
        }
    };
}

/// Chainable setters, one per optional field: `.field(value)` sets `Some(value.into())`.
macro_rules! setters {
    ($kind:ty { $($field:ident: $value:ty),* $(,)? }) => {
        impl $kind {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub fn $field(mut self, value: impl Into<$value>) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
        }
    };
}

pub(super) use {setters, wire_enum};
