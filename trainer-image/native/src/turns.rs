//! A `messages` list read for the instruction format: what validation (session.rs) needs of each message, its
//! text borrowed from the line where it holds no escapes, and no JSON tree built (serde_json's `Value` with its
//! ordered maps: an allocation per key, value and map, and a hashed key each).
//!
//! What a message's `Value` would have told, these tell the same: a message that is not an object, a role that is
//! not one of the four names, content that is absent or null, text, a list of parts (all objects; the string
//! `text` of each) or anything else; and JSON a `Value` refuses stays refused (`Skip`). Repeated keys: the last one
//! wins, as in the map.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::session::ROLES;

pub enum Content<'a> {
    /// Absent or null: an assistant turn that only calls tools.
    Empty,
    Text(Cow<'a, str>),
    /// A list of parts, all objects: the string `text` of each that has one.
    Parts(Vec<Cow<'a, str>>),
    Invalid,
}

pub enum Message<'a> {
    NotObject,
    Object {
        /// None: missing, or not one of ROLES.
        role: Option<&'static str>,
        content: Content<'a>,
    },
}

/// The messages, or None when `messages` is not a list.
pub struct Messages<'a>(pub Option<Vec<Message<'a>>>);

/// The visit methods of the JSON types a visitor answers with `$value` (containers' contents skipped).
macro_rules! answer {
    ($de:lifetime, $value:expr; $($kind:ident)*) => { $(answer!(@$kind $de $value);)* };
    (@unit $de:lifetime $value:expr) => { fn visit_unit<E>(self) -> Result<Self::Value, E> { Ok($value) } };
    (@bool $de:lifetime $value:expr) => { fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> { Ok($value) } };
    (@i64 $de:lifetime $value:expr) => { fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> { Ok($value) } };
    (@u64 $de:lifetime $value:expr) => { fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> { Ok($value) } };
    (@f64 $de:lifetime $value:expr) => { fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> { Ok($value) } };
    (@str $de:lifetime $value:expr) => { fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> { Ok($value) } };
    (@seq $de:lifetime $value:expr) => {
        fn visit_seq<A: SeqAccess<$de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<Skip>()?.is_some() {}
            Ok($value)
        }
    };
    (@map $de:lifetime $value:expr) => {
        fn visit_map<A: MapAccess<$de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<Skip, Skip>()?.is_some() {}
            Ok($value)
        }
    };
}

fn expecting(formatter: &mut fmt::Formatter) -> fmt::Result {
    formatter.write_str("any JSON value")
}

impl<'de> Deserialize<'de> for Messages<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Messages<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                expecting(formatter)
            }
            answer!('de, Messages(None); unit bool i64 u64 f64 str map);
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut messages = Vec::new();
                while let Some(message) = seq.next_element::<Message<'de>>()? {
                    messages.push(message);
                }
                Ok(Messages(Some(messages)))
            }
        }
        deserializer.deserialize_any(List)
    }
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Message<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                expecting(formatter)
            }
            answer!('de, Message::NotObject; unit bool i64 u64 f64 str seq);
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut role, mut content) = (None, Content::Empty);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Role => role = map.next_value::<Role>()?.0,
                        Key::Content => content = map.next_value()?,
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(Message::Object { role, content })
            }
        }
        deserializer.deserialize_any(Object)
    }
}

/// Any JSON value, read as serde_json reads it into a `Value` (strings validated, numbers in range) and dropped.
/// Not `IgnoredAny`: it skips strings and numbers unchecked, and a line whose `messages` a `Value` refused (a
/// lone surrogate, a number out of range) must stay invalid JSON.
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Skip;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                expecting(formatter)
            }
            answer!('de, Skip; unit bool i64 u64 f64 str seq map);
        }
        deserializer.deserialize_any(Any)
    }
}

/// The keys read in a message or a content part.
enum Key {
    Role,
    Content,
    Text,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Key;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a key")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "role" => Key::Role,
                    "content" => Key::Content,
                    "text" => Key::Text,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// A role, if it is one of ROLES.
struct Role(Option<&'static str>);

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = Role;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                expecting(formatter)
            }
            answer!('de, Role(None); unit bool i64 u64 f64 seq map);
            fn visit_str<E>(self, name: &str) -> Result<Role, E> {
                Ok(Role(ROLES.iter().find(|known| **known == name).copied()))
            }
        }
        deserializer.deserialize_any(Name)
    }
}

impl<'de> Deserialize<'de> for Content<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Kind;
        impl<'de> Visitor<'de> for Kind {
            type Value = Content<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                expecting(formatter)
            }
            answer!('de, Content::Invalid; bool i64 u64 f64 map);
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Content::Empty)
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(text.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let (mut texts, mut objects) = (Vec::new(), true);
                while let Some(part) = seq.next_element_seed(PartSeed)? {
                    match part {
                        Part::Text(text) => texts.push(text),
                        Part::Object => {}
                        Part::Other => objects = false,
                    }
                }
                Ok(if objects {
                    Content::Parts(texts)
                } else {
                    Content::Invalid
                })
            }
        }
        deserializer.deserialize_any(Kind)
    }
}

/// A content part: an object with a string `text`, another object, or not an object.
enum Part<'a> {
    Text(Cow<'a, str>),
    Object,
    Other,
}

struct PartSeed;

impl<'de> DeserializeSeed<'de> for PartSeed {
    type Value = Part<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Part<'de>, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Part<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                expecting(formatter)
            }
            answer!('de, Part::Other; unit bool i64 u64 f64 str seq);
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut text = None;
                while let Some(key) = map.next_key::<Key>()? {
                    if matches!(key, Key::Text) {
                        text = map.next_value::<Text<'de>>()?.0;
                    } else {
                        map.next_value::<Skip>()?;
                    }
                }
                Ok(text.map_or(Part::Object, Part::Text))
            }
        }
        deserializer.deserialize_any(Object)
    }
}

/// A value, if it is a string.
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> Visitor<'de> for Str {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                expecting(formatter)
            }
            answer!('de, Text(None); unit bool i64 u64 f64 seq map);
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(text))))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(text.to_owned()))))
            }
        }
        deserializer.deserialize_any(Str)
    }
}
