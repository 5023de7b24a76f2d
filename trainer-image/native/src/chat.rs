//! A conversation's sample (the chat record of docs/session-schema.md): every text redacted, the line
//! written, and the texts deduplication and the token count judge.
//!
//! Redacted: message contents (tool results included), the string values inside tool-call arguments
//! (at any depth; keys are names, left alone) and the tool definitions' texts (descriptions, parameter
//! schemas), all but the function names and `type`. Call ids and function names are identifiers
//! that tie calls, results and definitions together: they are never rewritten.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::conversation::Conversation;
use crate::jsonout;
use crate::redact::{Redactor, RULES};

pub struct ChatSample {
    /// `{"messages": [...], "tools": [...]` (tools only when the session defined some); the caller closes it.
    pub line: Vec<u8>,
    /// The conversation's texts, in order: contents, and each call's name and arguments (as JSON).
    /// Deduplication hashes them; the tool definitions are left out, as most sessions of a source share them.
    pub texts: Vec<String>,
    /// The tool definitions as written, counted with the texts by maxTokens (a chat template renders them).
    pub tools: String,
}

impl ChatSample {
    /// The rendered conversation's text for a token count: the texts, then the tool definitions.
    pub fn counted_text(&self) -> String {
        let mut parts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        if !self.tools.is_empty() {
            parts.push(&self.tools);
        }
        parts.join("\n")
    }

    /// The length in bytes of `counted_text`, without building it.
    pub fn counted_bytes(&self) -> usize {
        let texts: usize = self.texts.iter().map(String::len).sum::<usize>() + self.texts.len().saturating_sub(1);
        texts + if self.tools.is_empty() { 0 } else { self.tools.len() + 1 }
    }
}

pub fn sample(conversation: Conversation, redactor: &Redactor, counts: &mut [u32; RULES.len()]) -> ChatSample {
    let Conversation { messages, mut tools } = conversation;
    let mut texts = Vec::with_capacity(messages.len() * 2);
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"{\"messages\":[");
    for (index, message) in messages.into_iter().enumerate() {
        if index > 0 {
            line.push(b',');
        }
        let content = redact(redactor, message.content, counts);
        line.extend_from_slice(b"{\"role\":");
        jsonout::string(&mut line, message.role);
        line.extend_from_slice(b",\"content\":");
        jsonout::string(&mut line, &content);
        texts.push(content);
        if !message.calls.is_empty() {
            line.extend_from_slice(b",\"tool_calls\":[");
            for (position, mut call) in message.calls.into_iter().enumerate() {
                if position > 0 {
                    line.push(b',');
                }
                redact_strings(redactor, call.arguments.values_mut(), counts);
                let arguments = serde_json::to_string(&call.arguments).expect("a JSON object serialises");
                line.extend_from_slice(b"{\"id\":");
                jsonout::string(&mut line, &call.id);
                line.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                jsonout::string(&mut line, &call.name);
                line.extend_from_slice(b",\"arguments\":");
                line.extend_from_slice(arguments.as_bytes());
                line.extend_from_slice(b"}}");
                texts.push(call.name);
                texts.push(arguments);
            }
            line.push(b']');
        }
        if let Some(id) = message.answers {
            line.extend_from_slice(b",\"tool_call_id\":");
            jsonout::string(&mut line, &id);
        }
        line.push(b'}');
    }
    line.push(b']');
    let mut written_tools = String::new();
    if !tools.is_empty() {
        for tool in &mut tools {
            redact_definition(redactor, tool, counts);
        }
        written_tools = serde_json::to_string(&tools).expect("JSON values serialise");
        line.extend_from_slice(b",\"tools\":");
        line.extend_from_slice(written_tools.as_bytes());
    }
    ChatSample {
        line,
        texts,
        tools: written_tools,
    }
}

fn redact(redactor: &Redactor, text: String, counts: &mut [u32; RULES.len()]) -> String {
    redactor.redact(Cow::Owned(text), counts).into_owned()
}

/// Every string among `values`, at any depth.
fn redact_strings<'a>(
    redactor: &Redactor,
    values: impl Iterator<Item = &'a mut Value>,
    counts: &mut [u32; RULES.len()],
) {
    for value in values {
        match value {
            Value::String(text) => *text = redact(redactor, std::mem::take(text), counts),
            Value::Array(items) => redact_strings(redactor, items.iter_mut(), counts),
            Value::Object(fields) => redact_strings(redactor, fields.values_mut(), counts),
            _ => {}
        }
    }
}

/// A tool definition's texts: everything but `type` and the function's `name`.
fn redact_definition(redactor: &Redactor, tool: &mut Value, counts: &mut [u32; RULES.len()]) {
    let Value::Object(tool) = tool else {
        return;
    };
    for (key, value) in tool.iter_mut() {
        match (key.as_str(), value) {
            ("type", _) => {}
            ("function", Value::Object(function)) => redact_function(redactor, function, counts),
            (_, value) => redact_strings(redactor, std::iter::once(value), counts),
        }
    }
}

fn redact_function(redactor: &Redactor, function: &mut Map<String, Value>, counts: &mut [u32; RULES.len()]) {
    let values = function
        .iter_mut()
        .filter(|(key, _)| key.as_str() != "name")
        .map(|(_, value)| value);
    redact_strings(redactor, values, counts);
}
