//! A `messages` session kept as a conversation (`curation.format: chat`): the OpenAI chat shape validated
//! and normalised into the dataset's chat record (docs/session-schema.md).
//!
//! Messages are checked in order and the first defect wins; then, once every message is read, a call
//! never answered, a conversation not ending with an assistant message, and the empty checks. A call
//! never answered rejects the session rather than being dropped from it: the assistant turns after it
//! were written by an agent that never saw its result (a truncated log or a broken harness), so the
//! conversation would teach the model to continue without the results it asked for.

use serde_json::{Map, Value};

use crate::session::{content, is_blank, role, Invalid};

// Rejection outcomes of the chat format, as finetune_trainer.curate.outcomes.Outcome values.
pub const ORPHAN_TOOL_RESULT: &str = "orphanToolResult";
pub const UNANSWERED_TOOL_CALL: &str = "unansweredToolCall";
pub const INVALID_TOOL_ARGUMENTS: &str = "invalidToolArguments";
pub const UNKNOWN_TOOL: &str = "unknownTool";
pub const NOT_ENDING_WITH_ASSISTANT: &str = "notEndingWithAssistant";
pub const OUTCOMES: [&str; 5] = [
    ORPHAN_TOOL_RESULT,
    UNANSWERED_TOOL_CALL,
    INVALID_TOOL_ARGUMENTS,
    UNKNOWN_TOOL,
    NOT_ENDING_WITH_ASSISTANT,
];

pub struct Call {
    pub id: String,
    pub name: String,
    pub arguments: Map<String, Value>,
}

pub struct Message {
    pub role: &'static str,
    pub content: String,
    /// The calls an assistant message made.
    pub calls: Vec<Call>,
    /// The id of the call a tool message answers.
    pub answers: Option<String>,
}

pub struct Conversation {
    pub messages: Vec<Message>,
    /// The session's function definitions, as given (OpenAI shape).
    pub tools: Vec<Value>,
}

impl Conversation {
    /// An instruction/input/output session as a conversation: the user asks, the assistant answers.
    pub fn from_fields(instruction: &str, input: &str, output: &str) -> Self {
        let question = if input.is_empty() {
            instruction.to_owned()
        } else {
            format!("{instruction}\n\n{input}")
        };
        let message = |role, content| Message {
            role,
            content,
            calls: Vec::new(),
            answers: None,
        };
        Conversation {
            messages: vec![message("user", question), message("assistant", output.to_owned())],
            tools: Vec::new(),
        }
    }
}

fn rejected(outcome: &'static str, detail: String) -> Invalid {
    Invalid::Conversation(outcome, detail)
}

/// A call made and not yet answered.
struct Pending {
    id: String,
    name: String,
    at: String,
}

pub fn from_messages(messages: Value, tools: Option<Value>) -> Result<Conversation, Invalid> {
    let messages = match messages {
        Value::Array(messages) if !messages.is_empty() => messages,
        _ => return Err(Invalid::Malformed("'messages' must be a non-empty list".into())),
    };
    let (tools, names) = definitions(tools)?;
    let mut pending: Vec<Pending> = Vec::new();
    let mut normalised = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        let Value::Object(mut message) = message else {
            return Err(Invalid::Malformed(format!("messages[{index}] must be an object")));
        };
        let role = role(index, &message).map_err(Invalid::Malformed)?;
        let text = content(index, message.remove("content")).map_err(Invalid::Malformed)?;
        let calls = calls(index, role, message.remove("tool_calls"), &names)?;
        pending.extend(calls.iter().enumerate().map(|(position, call)| Pending {
            id: call.id.clone(),
            name: call.name.clone(),
            at: format!("messages[{index}].tool_calls[{position}]"),
        }));
        let answers = if role == "tool" {
            Some(answer(index, message.remove("tool_call_id"), &mut pending)?)
        } else {
            None
        };
        normalised.push(Message {
            role,
            content: text,
            calls,
            answers,
        });
    }
    if let Some(call) = pending.first() {
        return Err(rejected(
            UNANSWERED_TOOL_CALL,
            format!(
                "{} ({}, id '{}') is never answered by a tool message",
                call.at, call.name, call.id
            ),
        ));
    }
    check_turns(&normalised)?;
    Ok(Conversation {
        messages: normalised,
        tools,
    })
}

/// The last message answers, someone asked, and neither the question nor the answer is blank.
fn check_turns(messages: &[Message]) -> Result<(), Invalid> {
    let last = messages.last().expect("messages is not empty");
    if last.role != "assistant" {
        return Err(rejected(
            NOT_ENDING_WITH_ASSISTANT,
            format!(
                "the last message (messages[{}]) is a {} message",
                messages.len() - 1,
                last.role
            ),
        ));
    }
    if !messages.iter().any(|message| message.role == "user") {
        return Err(Invalid::Malformed("'messages' has no user message".into()));
    }
    let asked = |message: &&Message| matches!(message.role, "system" | "user") && !is_blank(&message.content);
    if !messages.iter().any(|message| asked(&message)) {
        return Err(Invalid::Empty("no instruction"));
    }
    if is_blank(&last.content) {
        return Err(Invalid::Empty("no output"));
    }
    Ok(())
}

/// The tool definitions and their function names; each must be `{"type": "function", "function": {"name"}}`.
fn definitions(tools: Option<Value>) -> Result<(Vec<Value>, Vec<String>), Invalid> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(Invalid::Malformed("'tools' must be a list".into())),
    };
    let names = (tools.iter().enumerate())
        .map(|(index, tool)| {
            let name = (tool.get("type").and_then(Value::as_str) == Some("function"))
                .then(|| tool.get("function")?.get("name")?.as_str())
                .flatten()
                .filter(|name| !name.is_empty());
            name.map(str::to_owned).ok_or_else(|| {
                Invalid::Malformed(format!(
                    "tools[{index}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((tools, names))
}

fn calls(index: usize, role: &str, calls: Option<Value>, names: &[String]) -> Result<Vec<Call>, Invalid> {
    let calls = match calls {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) if calls.is_empty() => return Ok(Vec::new()),
        Some(Value::Array(calls)) if role == "assistant" => calls,
        Some(Value::Array(_)) => {
            return Err(Invalid::Malformed(format!(
                "messages[{index}].tool_calls: only assistant messages call tools"
            )))
        }
        Some(_) => {
            return Err(Invalid::Malformed(format!(
                "messages[{index}].tool_calls must be a list"
            )))
        }
    };
    (calls.into_iter().enumerate())
        .map(|(position, call)| {
            let call = one_call(&format!("messages[{index}].tool_calls[{position}]"), call)?;
            if !names.is_empty() && !names.contains(&call.name) {
                return Err(rejected(
                    UNKNOWN_TOOL,
                    format!(
                        "messages[{index}].tool_calls[{position}] calls '{}', which 'tools' does not define",
                        call.name
                    ),
                ));
            }
            Ok(call)
        })
        .collect()
}

/// `{"id", "type": "function", "function": {"name", "arguments"}}`; arguments a JSON object or a string holding one.
fn one_call(at: &str, call: Value) -> Result<Call, Invalid> {
    let Value::Object(mut call) = call else {
        return Err(Invalid::Malformed(format!("{at} must be an object")));
    };
    let id = match call.remove("id") {
        Some(Value::String(id)) if !id.is_empty() => id,
        _ => return Err(Invalid::Malformed(format!("{at}.id must be a non-empty string"))),
    };
    if !matches!(call.get("type"), None | Some(Value::Null)) && call.get("type") != Some(&Value::from("function")) {
        return Err(Invalid::Malformed(format!("{at}.type must be 'function'")));
    }
    let Some(Value::Object(mut function)) = call.remove("function") else {
        return Err(Invalid::Malformed(format!("{at}.function must be an object")));
    };
    let name = match function.remove("name") {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => {
            return Err(Invalid::Malformed(format!(
                "{at}.function.name must be a non-empty string"
            )))
        }
    };
    let arguments = match function.remove("arguments") {
        // A function without parameters.
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(arguments)) => arguments,
            Ok(_) => {
                return Err(rejected(
                    INVALID_TOOL_ARGUMENTS,
                    format!("{at} ({name}): arguments must be a JSON object"),
                ))
            }
            Err(error) => {
                return Err(rejected(
                    INVALID_TOOL_ARGUMENTS,
                    format!("{at} ({name}): arguments are not valid JSON: {error}"),
                ))
            }
        },
        Some(_) => {
            return Err(rejected(
                INVALID_TOOL_ARGUMENTS,
                format!("{at} ({name}): arguments must be a JSON object or a string holding one"),
            ))
        }
    };
    Ok(Call { id, name, arguments })
}

/// The id of the call a tool message answers: the latest unanswered call with that id.
fn answer(index: usize, id: Option<Value>, pending: &mut Vec<Pending>) -> Result<String, Invalid> {
    let Some(Value::String(id)) = id else {
        return Err(rejected(
            ORPHAN_TOOL_RESULT,
            format!("messages[{index}] is a tool result without a 'tool_call_id'"),
        ));
    };
    let Some(position) = pending.iter().rposition(|call| call.id == id) else {
        return Err(rejected(
            ORPHAN_TOOL_RESULT,
            format!("messages[{index}] answers tool call '{id}', which no earlier assistant message made (or another tool message answered)"),
        ));
    };
    pending.remove(position);
    Ok(id)
}
