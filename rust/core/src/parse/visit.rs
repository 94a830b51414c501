//! Generic serde pieces for reading a body in one borrowed pass: every value is accepted and
//! described (so a wrong type becomes a precise field error, not a serde message), nesting is
//! counted against the parser's own limit, and values nobody reads are skipped without being
//! built.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The JSON type of a value, named the way error messages say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        })
    }
}

/// The nesting level an array or object read here would have (the body itself is level 1),
/// and the parser's limit. serde_json's own limit is fixed; ours is a setting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Depth {
    level: usize,
    max: usize,
}

impl Depth {
    pub(crate) fn root(max: usize) -> Self {
        Self { level: 1, max }
    }

    pub(crate) fn child(self) -> Self {
        Self {
            level: self.level + 1,
            ..self
        }
    }

    /// Called on entering an array or object.
    pub(crate) fn enter<E: de::Error>(self) -> Result<(), E> {
        if self.level > self.max {
            return Err(E::custom(format_args!(
                "request body nests deeper than {} levels",
                self.max
            )));
        }
        Ok(())
    }
}

/// A value of the expected JSON type, or the kind of value found instead.
pub(crate) type OrKind<T> = Result<T, Kind>;

/// Why a field is wrong; rendered after its dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Complaint {
    Missing,
    Empty,
    WrongType { expected: &'static str, got: Kind },
}

impl fmt::Display for Complaint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("is required"),
            Self::Empty => f.write_str("must not be empty"),
            Self::WrongType { expected, got } => write!(f, "must be {expected}, got {got}"),
        }
    }
}

/// A field error found while reading, with its path relative to the value being read, so that
/// enclosing readers can prefix their own part (`role` becomes `messages.2.role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) path: String,
    pub(crate) complaint: Complaint,
}

impl Problem {
    pub(crate) fn at(path: impl Into<String>, complaint: Complaint) -> Self {
        Self {
            path: path.into(),
            complaint,
        }
    }

    pub(crate) fn wrong_type(path: impl Into<String>, expected: &'static str, got: Kind) -> Self {
        Self::at(path, Complaint::WrongType { expected, got })
    }

    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.path = if self.path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.path)
        };
        self
    }
}

impl From<Problem> for crate::Error {
    fn from(problem: Problem) -> Self {
        let message = format!("`{}` {}", problem.path, problem.complaint);
        crate::Error::invalid_field(problem.path, message)
    }
}

/// A reader of one JSON value. It says what to do with the kinds it expects; the kinds it does
/// not override are skipped (nesting still counted) and handed to [`Read::other`]. An array or
/// object reaches `seq` or `map` already counted against the nesting limit, with `inner`, the
/// level an array or object inside it would have.
pub(crate) trait Read<'de>: Sized {
    type Value;

    fn other(self, kind: Kind) -> Self::Value;

    fn bool(self, _: bool) -> Self::Value {
        self.other(Kind::Bool)
    }

    fn str(self, _: Text<'de, '_>) -> Self::Value {
        self.other(Kind::String)
    }

    fn null(self) -> Self::Value {
        self.other(Kind::Null)
    }

    fn seq<A: SeqAccess<'de>>(self, seq: A, inner: Depth) -> Result<Self::Value, A::Error> {
        skip_elements(seq, inner)?;
        Ok(self.other(Kind::Array))
    }

    fn map<A: MapAccess<'de>>(self, map: A, inner: Depth) -> Result<Self::Value, A::Error> {
        skip_entries(map, inner)?;
        Ok(self.other(Kind::Object))
    }
}

/// A string as the deserializer hands it: borrowed from the body when it has no escapes,
/// otherwise only lent for the call, so it is copied only by readers that keep it.
pub(crate) enum Text<'de, 'a> {
    Borrowed(&'de str),
    Transient(&'a str),
}

impl<'de> Text<'de, '_> {
    pub(crate) fn into_cow(self) -> Cow<'de, str> {
        match self {
            Self::Borrowed(s) => Cow::Borrowed(s),
            Self::Transient(s) => Cow::Owned(s.to_owned()),
        }
    }
}

/// Runs a [`Read`] as a serde seed, with the level an array or object read here would have.
pub(crate) struct Reader<R>(pub(crate) R, pub(crate) Depth);

impl<'de, R: Read<'de>> DeserializeSeed<'de> for Reader<R> {
    type Value = R::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<R::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, R: Read<'de>> Visitor<'de> for Reader<R> {
    type Value = R::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<R::Value, E> {
        Ok(self.0.bool(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<R::Value, E> {
        Ok(self.0.str(Text::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<R::Value, E> {
        Ok(self.0.str(Text::Transient(v)))
    }

    fn visit_i64<E>(self, _: i64) -> Result<R::Value, E> {
        Ok(self.0.other(Kind::Number))
    }

    fn visit_u64<E>(self, _: u64) -> Result<R::Value, E> {
        Ok(self.0.other(Kind::Number))
    }

    fn visit_f64<E>(self, _: f64) -> Result<R::Value, E> {
        Ok(self.0.other(Kind::Number))
    }

    fn visit_unit<E>(self) -> Result<R::Value, E> {
        Ok(self.0.null())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<R::Value, A::Error> {
        self.1.enter()?;
        self.0.seq(seq, self.1.child())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<R::Value, A::Error> {
        self.1.enter()?;
        self.0.map(map, self.1.child())
    }
}

/// Reads any value without keeping it, and says what it was.
pub(crate) struct Skip;

impl Read<'_> for Skip {
    type Value = Kind;

    fn other(self, kind: Kind) -> Kind {
        kind
    }
}

/// A value read where a boolean or a string is expected; anything else reads as its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scalar<'a> {
    Bool(bool),
    Str(Cow<'a, str>),
    Other(Kind),
}

impl Scalar<'_> {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Self::Bool(_) => Kind::Bool,
            Self::Str(_) => Kind::String,
            Self::Other(kind) => *kind,
        }
    }

    pub(crate) fn is_str(&self, expected: &str) -> bool {
        matches!(self, Self::Str(s) if s == expected)
    }
}

pub(crate) struct ScalarReader;

impl<'de> Read<'de> for ScalarReader {
    type Value = Scalar<'de>;

    fn other(self, kind: Kind) -> Scalar<'de> {
        Scalar::Other(kind)
    }

    fn bool(self, v: bool) -> Scalar<'de> {
        Scalar::Bool(v)
    }

    fn str(self, v: Text<'de, '_>) -> Scalar<'de> {
        Scalar::Str(v.into_cow())
    }
}

/// Reads an array's elements without keeping them, and counts them.
pub(crate) fn skip_elements<'de, A: SeqAccess<'de>>(
    mut seq: A,
    depth: Depth,
) -> Result<usize, A::Error> {
    let mut count = 0;
    while seq.next_element_seed(Reader(Skip, depth))?.is_some() {
        count += 1;
    }
    Ok(count)
}

fn skip_entries<'de, A: MapAccess<'de>>(mut map: A, depth: Depth) -> Result<(), A::Error> {
    while map.next_key::<IgnoredAny>()?.is_some() {
        map.next_value_seed(Reader(Skip, depth))?;
    }
    Ok(())
}

/// Reads an array's elements with `element` until one is wrong, handing each right one to
/// `keep`; the rest is then only checked for JSON validity, so the first wrong element is the
/// one reported, whatever follows it. Returns the number of elements and that first problem,
/// its path under `name.<index>`.
pub(crate) fn read_elements<'de, A, R, T>(
    mut seq: A,
    depth: Depth,
    name: &str,
    element: R,
    mut keep: impl FnMut(T),
) -> Result<(usize, Option<Problem>), A::Error>
where
    A: SeqAccess<'de>,
    R: Read<'de, Value = Result<T, Problem>> + Copy,
{
    let mut index = 0;
    while let Some(read) = seq.next_element_seed(Reader(element, depth))? {
        match read {
            Ok(value) => keep(value),
            Err(found) => {
                let problem = found.within(&format!("{name}.{index}"));
                let rest = skip_elements(seq, depth)?;
                return Ok((index + 1 + rest, Some(problem)));
            }
        }
        index += 1;
    }
    Ok((index, None))
}

/// Reads an object: the value under each key `F` names goes to `field`, which reads it; the
/// values under other keys are skipped.
// Inlined into every reader, as the loop it replaces was: left to the optimizer it is not,
// and the whole parse is about 10% slower.
#[inline(always)]
pub(crate) fn read_fields<'de, F, A>(
    mut map: A,
    depth: Depth,
    mut field: impl FnMut(F, FieldValue<'_, A>) -> Result<(), A::Error>,
) -> Result<(), A::Error>
where
    F: FieldName,
    A: MapAccess<'de>,
{
    while let Some(name) = map.next_key_seed(FieldSeed::<F>::new())? {
        let value = FieldValue {
            map: &mut map,
            depth,
        };
        match name {
            Some(name) => field(name, value)?,
            None => {
                value.read(Skip)?;
            }
        }
    }
    Ok(())
}

/// The value under a key [`read_fields`] hands on, to be read once.
pub(crate) struct FieldValue<'a, A> {
    map: &'a mut A,
    depth: Depth,
}

impl<A> FieldValue<'_, A> {
    pub(crate) fn read<'de, R: Read<'de>>(self, read: R) -> Result<R::Value, A::Error>
    where
        A: MapAccess<'de>,
    {
        self.map.next_value_seed(Reader(read, self.depth))
    }
}

/// The object keys a reader cares about; any other key reads as `None`.
pub(crate) trait FieldName: Sized {
    fn from_name(name: &str) -> Option<Self>;
}

/// Reads an object key straight into a [`FieldName`], without allocating it.
struct FieldSeed<F>(PhantomData<F>);

impl<F> FieldSeed<F> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, F: FieldName> DeserializeSeed<'de> for FieldSeed<F> {
    type Value = Option<F>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<F: FieldName> Visitor<'_> for FieldSeed<F> {
    type Value = Option<F>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(F::from_name(v))
    }
}
