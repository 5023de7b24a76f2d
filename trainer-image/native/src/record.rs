//! One JSONL line decoded into the fields the session schema reads (session.rs validates them).
//!
//! Only the schema's fields are kept: text scalars borrow from the line when they hold no escapes,
//! `messages` and `tools` are parsed whole, everything else is only checked to be JSON as orjson checks it
//! (turns.rs's `Skip`: strings valid, numbers in range).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::turns::{Messages, Skip};

/// orjson's nesting limit: deeper documents are invalid JSON to it, so to us too.
const MAX_DEPTH: usize = 1024;

fn too_deep(raw: &[u8]) -> bool {
    // Cheap test first: a line with few brackets cannot nest deeply.
    if raw.iter().filter(|&&byte| byte == b'[' || byte == b'{').count() <= MAX_DEPTH {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The fields of a line that the schema reads; everything else is only checked to be JSON.
/// Repeated keys: the last one wins, as in the Python dict orjson builds.
#[derive(Default)]
pub struct Record<'a> {
    pub id: Option<Scalar<'a>>,
    pub success_rate: Option<Scalar<'a>>,
    pub success_rate_camel: Option<Scalar<'a>>,
    pub metadata: Option<Scalar<'a>>,
    /// `messages` in chat format, as JSON.
    pub messages: Option<Value>,
    /// `messages` in instruction format, as the turns it is flattened from.
    pub turns: Option<Messages<'a>>,
    /// The function definitions a `messages` session's calls may name (read in chat format only).
    pub tools: Option<Value>,
    pub instruction: Option<Scalar<'a>>,
    pub input: Option<Scalar<'a>>,
    pub output: Option<Scalar<'a>>,
}

/// A JSON value reduced to what validation needs; containers are parsed and dropped.
pub enum Scalar<'a> {
    Null,
    Bool,
    Int(String),
    Float(f64),
    Text(Cow<'a, str>),
    List,
    Object,
}

impl Scalar<'_> {
    /// Python's `type(value).__name__` for what orjson would have returned.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Null => "NoneType",
            Scalar::Bool => "bool",
            Scalar::Int(_) => "int",
            Scalar::Float(_) => "float",
            Scalar::Text(_) => "str",
            Scalar::List => "list",
            Scalar::Object => "dict",
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool)
    }
    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(value.to_string()))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(value.to_string()))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(value))
    }
    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(value)))
    }
    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(value.to_owned())))
    }
    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(value)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Scalar::List)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

enum Key {
    Id,
    SuccessRate,
    SuccessRateCamel,
    Metadata,
    Messages,
    Tools,
    Instruction,
    Input,
    Output,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a key")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "id" => Key::Id,
                    "success_rate" => Key::SuccessRate,
                    "successRate" => Key::SuccessRateCamel,
                    "metadata" => Key::Metadata,
                    "messages" => Key::Messages,
                    "tools" => Key::Tools,
                    "instruction" => Key::Instruction,
                    "input" => Key::Input,
                    "output" => Key::Output,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A whole line: a Record, or the type of the non-object it holds.
pub enum Line<'a> {
    Record(Box<Record<'a>>),
    Other(&'static str),
}

/// Reads `messages` as JSON (for the chat format) when `chat`, else as turns.
struct LineVisitor {
    chat: bool,
}

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut record = Record::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => record.id = Some(map.next_value()?),
                Key::SuccessRate => record.success_rate = Some(map.next_value()?),
                Key::SuccessRateCamel => record.success_rate_camel = Some(map.next_value()?),
                Key::Metadata => record.metadata = Some(map.next_value()?),
                Key::Messages if self.chat => record.messages = Some(map.next_value()?),
                Key::Messages => record.turns = Some(map.next_value()?),
                Key::Tools => record.tools = Some(map.next_value()?),
                Key::Instruction => record.instruction = Some(map.next_value()?),
                Key::Input => record.input = Some(map.next_value()?),
                Key::Output => record.output = Some(map.next_value()?),
                Key::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Line::Record(Box::new(record)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Line::Other(Scalar::Null.type_name()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Line::Other("bool"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Line::Other("int"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Line::Other("int"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Line::Other("float"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Line::Other("str"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Line::Other("list"))
    }
}

/// `raw` as a line; `messages` read for the chat format when `chat`.
pub fn decode(raw: &[u8], chat: bool) -> Result<Line<'_>, String> {
    if too_deep(raw) {
        return Err(format!("nesting deeper than {MAX_DEPTH}"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    // Depth is bounded above (too_deep); serde_json's own limit (128) is stricter than orjson's.
    deserializer.disable_recursion_limit();
    let line = deserializer
        .deserialize_any(LineVisitor { chat })
        .map_err(|error| error.to_string())?;
    deserializer.end().map_err(|error| error.to_string())?;
    Ok(line)
}
