//! One JSONL line -> a validated session or a rejection (docs/session-schema.md).
//!
//! The rules, the order of the checks and every message are those of the schema document;
//! messages must not change: they reach the manifest's malformed examples.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// orjson's nesting limit: deeper documents are invalid JSON to it, so to us too.
const MAX_DEPTH: usize = 1024;
const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];
const ROLES_MESSAGE: &str = "['assistant', 'system', 'tool', 'user']";

/// Text fields borrow from the line when they hold no escapes.
pub struct Session<'a> {
    pub id: Cow<'a, str>,
    pub success_rate: f64,
    pub instruction: Cow<'a, str>,
    pub input: Cow<'a, str>,
    pub output: Cow<'a, str>,
}

pub enum Invalid {
    /// Not JSON; the message is orjson's, added by the Python side (it owns the wording).
    Json(String),
    Malformed(String),
    Empty(&'static str),
}

/// Python's `bytes.strip()` whitespace.
fn is_ascii_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Python's `str.isspace()`: Unicode White_Space plus the four ASCII separators U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_py_space)
}

pub fn parse(raw: &[u8]) -> Result<Session<'_>, Invalid> {
    if raw.iter().all(|&byte| is_ascii_space(byte)) {
        return Err(Invalid::Empty("blank line"));
    }
    let record = match decode(raw).map_err(Invalid::Json)? {
        Line::Record(record) => *record,
        Line::Other(type_name) => {
            return Err(Invalid::Malformed(format!(
                "a line must be a JSON object, not {type_name}"
            )))
        }
    };
    let session = validate(record).map_err(Invalid::Malformed)?;
    if is_blank(&session.instruction) {
        return Err(Invalid::Empty("no instruction"));
    }
    if is_blank(&session.output) {
        return Err(Invalid::Empty("no output"));
    }
    Ok(session)
}

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
struct Record<'a> {
    id: Option<Scalar<'a>>,
    success_rate: Option<Scalar<'a>>,
    success_rate_camel: Option<Scalar<'a>>,
    metadata: Option<Scalar<'a>>,
    messages: Option<Value>,
    instruction: Option<Scalar<'a>>,
    input: Option<Scalar<'a>>,
    output: Option<Scalar<'a>>,
}

/// A JSON value reduced to what validation needs; containers are parsed and dropped.
enum Scalar<'a> {
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
    fn type_name(&self) -> &'static str {
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
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::List)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
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
enum Line<'a> {
    Record(Box<Record<'a>>),
    Other(&'static str),
}

struct LineVisitor;

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
                Key::Messages => record.messages = Some(map.next_value()?),
                Key::Instruction => record.instruction = Some(map.next_value()?),
                Key::Input => record.input = Some(map.next_value()?),
                Key::Output => record.output = Some(map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
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
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Line::Other("list"))
    }
}

fn decode(raw: &[u8]) -> Result<Line<'_>, String> {
    if too_deep(raw) {
        return Err(format!("nesting deeper than {MAX_DEPTH}"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    // Depth is bounded above (too_deep); serde_json's own limit (128) is stricter than orjson's.
    deserializer.disable_recursion_limit();
    let line = deserializer
        .deserialize_any(LineVisitor)
        .map_err(|error| error.to_string())?;
    deserializer.end().map_err(|error| error.to_string())?;
    Ok(line)
}

fn validate(record: Record<'_>) -> Result<Session<'_>, String> {
    let id = match record.id {
        Some(Scalar::Text(text)) if !text.is_empty() => text,
        Some(Scalar::Int(number)) => Cow::Owned(number),
        _ => return Err("'id' must be a non-empty string or an integer".into()),
    };
    let rate = match record.success_rate {
        None | Some(Scalar::Null) => record.success_rate_camel,
        found => found,
    };
    let rate = match rate {
        Some(Scalar::Int(number)) => number.parse::<f64>().ok(),
        Some(Scalar::Float(number)) => Some(number),
        _ => None,
    }
    .filter(|rate| (0.0..=1.0).contains(rate))
    .ok_or("'success_rate' (or 'successRate') must be a number in [0, 1]")?;
    if !matches!(record.metadata, None | Some(Scalar::Null) | Some(Scalar::Object)) {
        return Err("'metadata' must be an object".into());
    }
    let (instruction, input, output) = match record.messages {
        Some(messages) => {
            let (instruction, input, output) = from_messages(messages)?;
            (Cow::Owned(instruction), Cow::Owned(input), Cow::Owned(output))
        }
        None => (
            text_field(record.instruction, "instruction", true)?,
            text_field(record.input, "input", false)?,
            text_field(record.output, "output", true)?,
        ),
    };
    Ok(Session {
        id,
        success_rate: rate,
        instruction,
        input,
        output,
    })
}

fn text_field<'a>(value: Option<Scalar<'a>>, name: &str, required: bool) -> Result<Cow<'a, str>, String> {
    match value {
        Some(Scalar::Text(text)) => Ok(text),
        None | Some(Scalar::Null) if !required => Ok(Cow::Borrowed("")),
        Some(_) => Err(format!("'{name}' must be a string")),
        None => Err(format!("missing '{name}'")),
    }
}

fn from_messages(messages: Value) -> Result<(String, String, String), String> {
    let messages = match messages {
        Value::Array(messages) if !messages.is_empty() => messages,
        _ => return Err("'messages' must be a non-empty list".into()),
    };
    let turns = messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| turn(index, message))
        .collect::<Result<Vec<_>, _>>()?;
    let first_user = turns
        .iter()
        .position(|(role, _)| *role == "user")
        .ok_or("'messages' has no user message")?;
    let last = (first_user + 1..turns.len())
        .rev()
        .find(|&index| turns[index].0 == "assistant" && !is_blank(&turns[index].1));
    let mut parts: Vec<&str> = turns
        .iter()
        .filter(|(role, content)| *role == "system" && !is_blank(content))
        .map(|(_, content)| content.as_str())
        .collect();
    parts.push(&turns[first_user].1);
    let instruction = parts.join("\n\n");
    let Some(last) = last else {
        return Ok((instruction, String::new(), String::new()));
    };
    let context = turns[first_user + 1..last]
        .iter()
        .filter(|(role, content)| *role != "system" && !is_blank(content))
        .map(|(role, content)| format!("[{role}] {content}"))
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut turns = turns;
    let output = std::mem::take(&mut turns[last].1);
    Ok((instruction, context, output))
}

fn turn(index: usize, message: Value) -> Result<(&'static str, String), String> {
    let Value::Object(mut message) = message else {
        return Err(format!("messages[{index}] must be an object"));
    };
    let role = match message.get("role") {
        Some(Value::String(role)) => ROLES.iter().find(|known| **known == role.as_str()).copied(),
        _ => None,
    }
    .ok_or_else(|| format!("messages[{index}].role must be one of {ROLES_MESSAGE}"))?;
    Ok((role, content(index, message.remove("content"))?))
}

fn content(index: usize, content: Option<Value>) -> Result<String, String> {
    match content {
        // An assistant turn that only calls tools.
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text),
        // OpenAI-style content parts: keep the text parts, skip images and other media.
        Some(Value::Array(parts)) if parts.iter().all(Value::is_object) => Ok(parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")),
        Some(_) => Err(format!(
            "messages[{index}].content must be a string, null or a list of parts"
        )),
    }
}
