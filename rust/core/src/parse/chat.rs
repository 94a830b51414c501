//! Readers for the parts of a chat-completions body the gateway looks at. They gather facts
//! and the first wrong message in one pass; judging the facts is left to the caller, so the
//! error reported does not depend on the order of keys in the body.

use std::borrow::Cow;

use serde::de::{MapAccess, SeqAccess};

use super::visit::{
    read_elements, read_fields, skip_elements, Complaint, Depth, FieldName, Kind, OrKind, Problem,
    Read, Scalar, ScalarReader, Skip, Text,
};

/// What the body says, each field as read (`None` when absent).
#[derive(Debug, Default)]
pub(crate) struct BodyFacts<'a> {
    pub(crate) model: Option<Scalar<'a>>,
    pub(crate) messages: Option<Result<Messages<'a>, Kind>>,
    pub(crate) stream: Option<Scalar<'a>>,
    pub(crate) stream_options: Option<Result<StreamOptions<'a>, Kind>>,
    pub(crate) user: Option<Scalar<'a>>,
    pub(crate) tools: Option<Result<usize, Kind>>,
    pub(crate) functions: Option<Result<usize, Kind>>,
}

#[derive(Debug, Default)]
pub(crate) struct Messages<'a> {
    pub(crate) count: usize,
    /// The first wrong message, with its path from the body (`messages.2.role`).
    pub(crate) problem: Option<Problem>,
    /// Text parts of the last message whose role is "user".
    pub(crate) last_user_text: Option<Vec<Cow<'a, str>>>,
    /// The last user message's text was skipped: a role read before its content was not
    /// "user", and a repeated `role` key after it was. Read again with `keep_all_text`.
    pub(crate) text_dropped: bool,
}

#[derive(Debug, Default)]
pub(crate) struct StreamOptions<'a> {
    pub(crate) include_usage: Option<Scalar<'a>>,
}

enum BodyField {
    Model,
    Messages,
    Stream,
    StreamOptions,
    User,
    Tools,
    Functions,
}

impl FieldName for BodyField {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "model" => Self::Model,
            "messages" => Self::Messages,
            "stream" => Self::Stream,
            "stream_options" => Self::StreamOptions,
            "user" => Self::User,
            "tools" => Self::Tools,
            "functions" => Self::Functions,
            _ => return None,
        })
    }
}

/// Reads the whole body; a body that is not an object reads as its kind. Only user messages
/// need their text, so a message whose role is known not to be "user" when its content comes
/// is read without it, unless `keep_all_text`.
#[derive(Clone, Copy)]
pub(crate) struct BodyReader {
    pub(crate) keep_all_text: bool,
}

impl<'de> Read<'de> for BodyReader {
    type Value = OrKind<BodyFacts<'de>>;

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn map<A: MapAccess<'de>>(self, map: A, inner: Depth) -> Result<Self::Value, A::Error> {
        let mut facts = BodyFacts::default();
        read_fields(map, inner, |field: BodyField, value| {
            match field {
                BodyField::Model => facts.model = Some(value.read(ScalarReader)?),
                BodyField::Messages => {
                    let messages = MessagesReader {
                        keep_all_text: self.keep_all_text,
                    };
                    facts.messages = Some(value.read(messages)?)
                }
                BodyField::Stream => facts.stream = Some(value.read(ScalarReader)?),
                BodyField::StreamOptions => {
                    facts.stream_options = Some(value.read(StreamOptionsReader)?)
                }
                BodyField::User => facts.user = Some(value.read(ScalarReader)?),
                BodyField::Tools => facts.tools = Some(value.read(LenReader)?),
                BodyField::Functions => facts.functions = Some(value.read(LenReader)?),
            }
            Ok(())
        })?;
        Ok(Ok(facts))
    }
}

/// Reads an array as its length (`tools`, `functions`).
struct LenReader;

impl<'de> Read<'de> for LenReader {
    type Value = OrKind<usize>;

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn seq<A: SeqAccess<'de>>(self, seq: A, inner: Depth) -> Result<Self::Value, A::Error> {
        Ok(Ok(skip_elements(seq, inner)?))
    }
}

enum StreamOptionsField {
    IncludeUsage,
}

impl FieldName for StreamOptionsField {
    fn from_name(name: &str) -> Option<Self> {
        (name == "include_usage").then_some(Self::IncludeUsage)
    }
}

struct StreamOptionsReader;

impl<'de> Read<'de> for StreamOptionsReader {
    type Value = OrKind<StreamOptions<'de>>;

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn map<A: MapAccess<'de>>(self, map: A, inner: Depth) -> Result<Self::Value, A::Error> {
        let mut options = StreamOptions::default();
        read_fields(map, inner, |field: StreamOptionsField, value| {
            match field {
                StreamOptionsField::IncludeUsage => {
                    options.include_usage = Some(value.read(ScalarReader)?)
                }
            }
            Ok(())
        })?;
        Ok(Ok(options))
    }
}

struct MessagesReader {
    keep_all_text: bool,
}

impl<'de> Read<'de> for MessagesReader {
    type Value = OrKind<Messages<'de>>;

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn seq<A: SeqAccess<'de>>(self, seq: A, inner: Depth) -> Result<Self::Value, A::Error> {
        let mut last_user_text = None;
        let mut text_dropped = false;
        let keep = |message: Message<'de>| {
            if message.is_user {
                last_user_text = Some(message.text);
                text_dropped = message.text_dropped;
            }
        };
        let reader = MessageReader {
            keep_all_text: self.keep_all_text,
        };
        let (count, problem) = read_elements(seq, inner, "messages", reader, keep)?;
        Ok(Ok(Messages {
            count,
            problem,
            last_user_text,
            text_dropped,
        }))
    }
}

struct Message<'a> {
    is_user: bool,
    /// Text parts, kept only for user messages.
    text: Vec<Cow<'a, str>>,
    /// A user message whose text was skipped (see [`Messages::text_dropped`]).
    text_dropped: bool,
}

enum MessageField {
    Role,
    Content,
}

impl FieldName for MessageField {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "role" => Some(Self::Role),
            "content" => Some(Self::Content),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
struct MessageReader {
    keep_all_text: bool,
}

impl<'de> Read<'de> for MessageReader {
    type Value = Result<Message<'de>, Problem>;

    fn other(self, kind: Kind) -> Self::Value {
        Err(Problem::wrong_type("", "an object", kind))
    }

    fn map<A: MapAccess<'de>>(self, map: A, inner: Depth) -> Result<Self::Value, A::Error> {
        let mut role: Option<Scalar<'de>> = None;
        let mut content = None;
        let mut text_skipped = false;
        read_fields(map, inner, |field: MessageField, value| {
            match field {
                MessageField::Role => role = Some(value.read(ScalarReader)?),
                MessageField::Content => {
                    // The role usually comes first; then only a user's text is kept.
                    let keep_text = self.keep_all_text
                        || role.as_ref().map_or(true, |role| role.is_str("user"));
                    text_skipped = !keep_text;
                    content = Some(value.read(ContentReader { keep_text })?);
                }
            }
            Ok(())
        })?;
        Ok(judge_message(role, content).map(|mut message| {
            message.text_dropped = message.is_user && text_skipped;
            message
        }))
    }
}

fn judge_message<'a>(
    role: Option<Scalar<'a>>,
    content: Option<Result<Vec<Cow<'a, str>>, Problem>>,
) -> Result<Message<'a>, Problem> {
    let is_user = match role {
        None => return Err(Problem::at("role", Complaint::Missing)),
        Some(Scalar::Str(role)) => role == "user",
        Some(other) => return Err(Problem::wrong_type("role", "a string", other.kind())),
    };
    let text = content.transpose()?.unwrap_or_default();
    let text = if is_user { text } else { Vec::new() };
    Ok(Message {
        is_user,
        text,
        text_dropped: false,
    })
}

/// Reads a message's `content`: a string, null, or an array of parts.
struct ContentReader {
    keep_text: bool,
}

impl<'de> Read<'de> for ContentReader {
    type Value = Result<Vec<Cow<'de, str>>, Problem>;

    fn other(self, kind: Kind) -> Self::Value {
        let expected = "a string, an array of content parts or null";
        Err(Problem::wrong_type("content", expected, kind))
    }

    fn null(self) -> Self::Value {
        Ok(Vec::new())
    }

    fn str(self, text: Text<'de, '_>) -> Self::Value {
        Ok(if self.keep_text {
            vec![text.into_cow()]
        } else {
            Vec::new()
        })
    }

    fn seq<A: SeqAccess<'de>>(self, seq: A, inner: Depth) -> Result<Self::Value, A::Error> {
        let mut texts = Vec::new();
        let part = PartReader {
            keep_text: self.keep_text,
        };
        let (_, problem) = read_elements(seq, inner, "content", part, |text| texts.extend(text))?;
        Ok(problem.map_or(Ok(texts), Err))
    }
}

enum PartField {
    Type,
    Text,
}

impl FieldName for PartField {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "type" => Some(Self::Type),
            "text" => Some(Self::Text),
            _ => None,
        }
    }
}

/// Reads one content part: its text when it is a text part and the text is kept, `None` for
/// other parts (images, audio, files), which the gateway passes on unread.
#[derive(Clone, Copy)]
struct PartReader {
    keep_text: bool,
}

impl<'de> Read<'de> for PartReader {
    type Value = Result<Option<Cow<'de, str>>, Problem>;

    fn other(self, kind: Kind) -> Self::Value {
        Err(Problem::wrong_type("", "an object", kind))
    }

    fn map<A: MapAccess<'de>>(self, map: A, inner: Depth) -> Result<Self::Value, A::Error> {
        let mut is_text_part = false;
        let mut text: Option<Scalar<'de>> = None;
        read_fields(map, inner, |field: PartField, value| {
            match field {
                PartField::Type => is_text_part = value.read(ScalarReader)?.is_str("text"),
                PartField::Text if self.keep_text => text = Some(value.read(ScalarReader)?),
                // Only the kind matters when the text is not kept.
                PartField::Text => text = Some(Scalar::Other(value.read(Skip)?)),
            }
            Ok(())
        })?;
        if !is_text_part {
            return Ok(Ok(None));
        }
        Ok(match text {
            None => Err(Problem::at("text", Complaint::Missing)),
            Some(Scalar::Str(text)) => Ok(Some(text)),
            Some(Scalar::Other(Kind::String)) => Ok(None),
            Some(other) => Err(Problem::wrong_type("text", "a string", other.kind())),
        })
    }
}
