//! One JSONL line -> a validated session or a rejection (docs/session-schema.md).
//!
//! The rules, the order of the checks and every message are those of the schema document;
//! messages must not change: they reach the manifest's malformed examples.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::conversation::{self, Conversation};
use crate::record::{decode, Line, Record, Scalar};
use crate::turns::{Content, Message, Messages};

pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];
const CONTENT_MESSAGE: &str = "must be a string, null or a list of parts";
const ROLES_MESSAGE: &str = "['assistant', 'system', 'tool', 'user']";

/// Text fields borrow from the line when they hold no escapes.
pub struct Session<'a> {
    pub id: Cow<'a, str>,
    pub success_rate: f64,
    pub body: Body<'a>,
}

/// What becomes the sample, in the dataset's format.
pub enum Body<'a> {
    /// `curation.format: instruction`: a `messages` session is flattened into the three fields.
    Fields {
        instruction: Cow<'a, str>,
        input: Cow<'a, str>,
        output: Cow<'a, str>,
    },
    /// `curation.format: chat`: an instruction/input/output session becomes a two-message conversation.
    Chat(Conversation),
}

pub enum Invalid {
    /// Not JSON; the message is orjson's, added by the Python side (it owns the wording).
    Json(String),
    Malformed(String),
    Empty(&'static str),
    /// A conversation rejected in chat format (conversation.rs): its outcome and detail.
    Conversation(&'static str, String),
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

/// A line as a session whose body is in chat format when `chat`, else instruction format.
pub fn parse(raw: &[u8], chat: bool) -> Result<Session<'_>, Invalid> {
    if raw.iter().all(|&byte| is_ascii_space(byte)) {
        return Err(Invalid::Empty("blank line"));
    }
    let record = match decode(raw, chat).map_err(Invalid::Json)? {
        Line::Record(record) => *record,
        Line::Other(type_name) => {
            return Err(Invalid::Malformed(format!(
                "a line must be a JSON object, not {type_name}"
            )))
        }
    };
    validate(record, chat)
}

fn validate(record: Record<'_>, chat: bool) -> Result<Session<'_>, Invalid> {
    let id = match record.id {
        Some(Scalar::Text(text)) if !text.is_empty() => text,
        Some(Scalar::Int(number)) => Cow::Owned(number),
        _ => return Err(malformed("'id' must be a non-empty string or an integer")),
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
    .ok_or_else(|| malformed("'success_rate' (or 'successRate') must be a number in [0, 1]"))?;
    if !matches!(record.metadata, None | Some(Scalar::Null) | Some(Scalar::Object)) {
        return Err(malformed("'metadata' must be an object"));
    }
    let body = if let Some(messages) = record.messages {
        Body::Chat(conversation::from_messages(messages, record.tools)?)
    } else if let Some(messages) = record.turns {
        let (instruction, input, output) = from_messages(messages).map_err(Invalid::Malformed)?;
        fields(Cow::Owned(instruction), Cow::Owned(input), output, false)?
    } else {
        fields(
            text_field(record.instruction, "instruction", true).map_err(Invalid::Malformed)?,
            text_field(record.input, "input", false).map_err(Invalid::Malformed)?,
            text_field(record.output, "output", true).map_err(Invalid::Malformed)?,
            chat,
        )?
    };
    Ok(Session {
        id,
        success_rate: rate,
        body,
    })
}

fn malformed(message: &str) -> Invalid {
    Invalid::Malformed(message.into())
}

/// The three fields, unless one of the two that must hold text is blank; as a conversation when `chat`.
fn fields<'a>(
    instruction: Cow<'a, str>,
    input: Cow<'a, str>,
    output: Cow<'a, str>,
    chat: bool,
) -> Result<Body<'a>, Invalid> {
    if is_blank(&instruction) {
        return Err(Invalid::Empty("no instruction"));
    }
    if is_blank(&output) {
        return Err(Invalid::Empty("no output"));
    }
    Ok(if chat {
        Body::Chat(Conversation::from_fields(&instruction, &input, &output))
    } else {
        Body::Fields {
            instruction,
            input,
            output,
        }
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

fn from_messages(messages: Messages<'_>) -> Result<(String, String, Cow<'_, str>), String> {
    let messages = match messages.0 {
        Some(messages) if !messages.is_empty() => messages,
        _ => return Err("'messages' must be a non-empty list".into()),
    };
    let mut turns = messages
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
        .map(|(_, content)| content.as_ref())
        .collect();
    parts.push(&turns[first_user].1);
    let instruction = parts.join("\n\n");
    let Some(last) = last else {
        return Ok((instruction, String::new(), Cow::Borrowed("")));
    };
    let context = turns[first_user + 1..last]
        .iter()
        .filter(|(role, content)| *role != "system" && !is_blank(content))
        .map(|(role, content)| format!("[{role}] {content}"))
        .collect::<Vec<_>>()
        .join("\n\n");
    let output = std::mem::take(&mut turns[last].1);
    Ok((instruction, context, output))
}

/// A message's role and text (the `Value` checks of `role` and `content`, on what turns.rs read).
fn turn(index: usize, message: Message<'_>) -> Result<(&'static str, Cow<'_, str>), String> {
    let Message::Object { role, content } = message else {
        return Err(format!("messages[{index}] must be an object"));
    };
    let role = role.ok_or_else(|| format!("messages[{index}].role must be one of {ROLES_MESSAGE}"))?;
    let text = match content {
        Content::Empty => Cow::Borrowed(""),
        Content::Text(text) => text,
        Content::Parts(texts) => Cow::Owned(texts.join("\n")),
        Content::Invalid => return Err(format!("messages[{index}].content {CONTENT_MESSAGE}")),
    };
    Ok((role, text))
}

pub fn role(index: usize, message: &Map<String, Value>) -> Result<&'static str, String> {
    match message.get("role") {
        Some(Value::String(role)) => ROLES.iter().find(|known| **known == role.as_str()).copied(),
        _ => None,
    }
    .ok_or_else(|| format!("messages[{index}].role must be one of {ROLES_MESSAGE}"))
}

pub fn content(index: usize, content: Option<Value>) -> Result<String, String> {
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
        Some(_) => Err(format!("messages[{index}].content {CONTENT_MESSAGE}")),
    }
}
