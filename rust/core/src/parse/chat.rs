//! Readers for the parts of a chat-completions body the gateway looks at. They gather facts
//! and the first wrong message in one pass; judging the facts is left to the caller, so the
//! error reported does not depend on the order of keys in the body.

use std::borrow::Cow;

use serde::de::{MapAccess, SeqAccess};

use super::visit::{
    Complaint, Depth, FieldName, FieldSeed, Kind, Problem, Read, Reader, Scalar, ScalarSeed, Skip,
    Text,
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

/// Reads the whole body; a body that is not an object reads as its kind.
pub(crate) struct BodyReader(pub(crate) Depth);

impl<'de> Read<'de> for BodyReader {
    type Value = Result<BodyFacts<'de>, Kind>;

    fn depth(&self) -> Depth {
        self.0
    }

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.0.enter()?;
        let depth = self.0.child();
        let mut facts = BodyFacts::default();
        while let Some(field) = map.next_key_seed(FieldSeed::<BodyField>::new())? {
            match field {
                Some(BodyField::Model) => facts.model = Some(map.next_value_seed(scalar(depth))?),
                Some(BodyField::Messages) => {
                    let read = map.next_value_seed(Reader(MessagesReader(depth)))?;
                    facts.messages = Some(read);
                }
                Some(BodyField::Stream) => facts.stream = Some(map.next_value_seed(scalar(depth))?),
                Some(BodyField::StreamOptions) => {
                    let read = map.next_value_seed(Reader(StreamOptionsReader(depth)))?;
                    facts.stream_options = Some(read);
                }
                Some(BodyField::User) => facts.user = Some(map.next_value_seed(scalar(depth))?),
                Some(BodyField::Tools) => {
                    facts.tools = Some(map.next_value_seed(array_len(depth))?)
                }
                Some(BodyField::Functions) => {
                    facts.functions = Some(map.next_value_seed(array_len(depth))?)
                }
                None => {
                    map.next_value_seed(Reader(Skip(depth)))?;
                }
            }
        }
        Ok(Ok(facts))
    }
}

fn scalar(depth: Depth) -> Reader<ScalarSeed> {
    Reader(ScalarSeed(depth))
}

fn array_len(depth: Depth) -> Reader<LenReader> {
    Reader(LenReader(depth))
}

/// Reads an array as its length (`tools`, `functions`).
struct LenReader(Depth);

impl<'de> Read<'de> for LenReader {
    type Value = Result<usize, Kind>;

    fn depth(&self) -> Depth {
        self.0
    }

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.0.enter()?;
        let mut len = 0;
        while seq
            .next_element_seed(Reader(Skip(self.0.child())))?
            .is_some()
        {
            len += 1;
        }
        Ok(Ok(len))
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

struct StreamOptionsReader(Depth);

impl<'de> Read<'de> for StreamOptionsReader {
    type Value = Result<StreamOptions<'de>, Kind>;

    fn depth(&self) -> Depth {
        self.0
    }

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.0.enter()?;
        let depth = self.0.child();
        let mut options = StreamOptions::default();
        while let Some(field) = map.next_key_seed(FieldSeed::<StreamOptionsField>::new())? {
            match field {
                Some(StreamOptionsField::IncludeUsage) => {
                    options.include_usage = Some(map.next_value_seed(scalar(depth))?)
                }
                None => {
                    map.next_value_seed(Reader(Skip(depth)))?;
                }
            }
        }
        Ok(Ok(options))
    }
}

struct MessagesReader(Depth);

impl<'de> Read<'de> for MessagesReader {
    type Value = Result<Messages<'de>, Kind>;

    fn depth(&self) -> Depth {
        self.0
    }

    fn other(self, kind: Kind) -> Self::Value {
        Err(kind)
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.0.enter()?;
        let depth = self.0.child();
        let mut messages = Messages::default();
        loop {
            // After the first wrong message the rest is only checked for JSON validity.
            if messages.problem.is_some() {
                if seq.next_element_seed(Reader(Skip(depth)))?.is_none() {
                    break;
                }
            } else {
                match seq.next_element_seed(Reader(MessageReader(depth)))? {
                    None => break,
                    Some(Ok(message)) if message.is_user => {
                        messages.last_user_text = Some(message.text)
                    }
                    Some(Ok(_)) => {}
                    Some(Err(problem)) => {
                        let prefix = format!("messages.{}", messages.count);
                        messages.problem = Some(problem.within(&prefix));
                    }
                }
            }
            messages.count += 1;
        }
        Ok(Ok(messages))
    }
}

struct Message<'a> {
    is_user: bool,
    /// Text parts, kept only for user messages.
    text: Vec<Cow<'a, str>>,
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

struct MessageReader(Depth);

impl<'de> Read<'de> for MessageReader {
    type Value = Result<Message<'de>, Problem>;

    fn depth(&self) -> Depth {
        self.0
    }

    fn other(self, kind: Kind) -> Self::Value {
        Err(Problem::wrong_type("", "an object", kind))
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.0.enter()?;
        let depth = self.0.child();
        let mut role: Option<Scalar<'de>> = None;
        let mut content = None;
        while let Some(field) = map.next_key_seed(FieldSeed::<MessageField>::new())? {
            match field {
                Some(MessageField::Role) => role = Some(map.next_value_seed(scalar(depth))?),
                Some(MessageField::Content) => {
                    // The role usually comes first; then only a user's text is kept.
                    let keep_text = role.as_ref().map_or(true, |role| role.is_str("user"));
                    let reader = ContentReader { depth, keep_text };
                    content = Some(map.next_value_seed(Reader(reader))?);
                }
                None => {
                    map.next_value_seed(Reader(Skip(depth)))?;
                }
            }
        }
        Ok(judge_message(role, content))
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
    Ok(Message { is_user, text })
}

/// Reads a message's `content`: a string, null, or an array of parts.
struct ContentReader {
    depth: Depth,
    keep_text: bool,
}

impl<'de> Read<'de> for ContentReader {
    type Value = Result<Vec<Cow<'de, str>>, Problem>;

    fn depth(&self) -> Depth {
        self.depth
    }

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

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.depth.enter()?;
        let depth = self.depth.child();
        let mut texts = Vec::new();
        let mut problem: Option<Problem> = None;
        let mut index = 0;
        loop {
            if problem.is_some() {
                if seq.next_element_seed(Reader(Skip(depth)))?.is_none() {
                    break;
                }
            } else {
                let reader = PartReader {
                    depth,
                    keep_text: self.keep_text,
                };
                match seq.next_element_seed(Reader(reader))? {
                    None => break,
                    Some(Ok(Some(text))) => texts.push(text),
                    Some(Ok(None)) => {}
                    Some(Err(found)) => problem = Some(found.within(&format!("content.{index}"))),
                }
            }
            index += 1;
        }
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
struct PartReader {
    depth: Depth,
    keep_text: bool,
}

impl<'de> Read<'de> for PartReader {
    type Value = Result<Option<Cow<'de, str>>, Problem>;

    fn depth(&self) -> Depth {
        self.depth
    }

    fn other(self, kind: Kind) -> Self::Value {
        Err(Problem::wrong_type("", "an object", kind))
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.depth.enter()?;
        let depth = self.depth.child();
        let mut is_text_part = false;
        let mut text: Option<Scalar<'de>> = None;
        while let Some(field) = map.next_key_seed(FieldSeed::<PartField>::new())? {
            match field {
                Some(PartField::Type) => {
                    is_text_part = map.next_value_seed(scalar(depth))?.is_str("text")
                }
                Some(PartField::Text) if self.keep_text => {
                    text = Some(map.next_value_seed(scalar(depth))?)
                }
                // Only the kind matters when the text is not kept.
                Some(PartField::Text) => {
                    text = Some(Scalar::Other(map.next_value_seed(Reader(Skip(depth)))?))
                }
                None => {
                    map.next_value_seed(Reader(Skip(depth)))?;
                }
            }
        }
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
