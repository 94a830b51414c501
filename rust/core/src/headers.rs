//! The request headers the gateway reads (DESIGN section 4), extracted in one pass into one
//! typed value.
//!
//! Names are case-insensitive, and every `floopy-*` header is also read as `x-floopy-*` (some
//! proxies and SDKs only pass `x-` headers on). Helicone's headers with a Floopy equivalent are
//! read as aliases (`helicone-session-id` for `floopy-session-id`, ...; `helicone-auth` is
//! not): a Floopy header wins over its alias whatever their order, and an alias property is
//! kept only when no Floopy property of that name was sent. Only the values of headers we read are checked:
//! a value longer than the limit, holding control characters or not UTF-8 is refused with the
//! header's name, because it would otherwise end up in logs, cache keys and upstream requests.
//! Surrounding spaces are trimmed, and an empty text value counts as absent. When a header
//! comes twice, the last one wins, except the lists (`floopy-fallback`,
//! `floopy-cache-ignore-keys`), which add up, and `x-forwarded-for`, where the first counts.

use crate::{Error, Result};

/// Every request header the gateway reads, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloopyHeaders {
    /// `Authorization: Bearer <key>`, else `x-api-key`.
    pub api_key: Option<String>,
    pub session_id: Option<String>,
    pub session_name: Option<String>,
    pub session_path: Option<String>,
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    /// `floopy-property-<name>: <value>`, names lower-cased, in the order first seen.
    pub properties: Vec<(String, String)>,
    pub model_override: Option<String>,
    pub routing_rule: Option<String>,
    pub fallbacks: Vec<String>,
    /// `floopy-cache-enabled`; when absent, `cache-control: no-store` or `no-cache` turn the
    /// cache off for the request.
    pub cache_enabled: Option<bool>,
    pub cache_advanced: bool,
    pub cache_seed: Option<String>,
    pub cache_bucket_max_size: Option<u64>,
    pub cache_ignore_keys: Vec<String>,
    /// `cache-control: max-age=N`, in seconds.
    pub cache_max_age: Option<u64>,
    pub llm_security_enabled: Option<bool>,
    pub user_agent: Option<String>,
    /// The first address of `x-forwarded-for`: the client, as the first proxy saw it.
    pub forwarded_for: Option<String>,
}

/// Extracts [`FloopyHeaders`]. Built once with its limits, used for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtractor {
    max_value_len: usize,
    max_properties: usize,
}

impl Default for HeaderExtractor {
    fn default() -> Self {
        Self::new(4096, 64)
    }
}

impl HeaderExtractor {
    pub fn new(max_value_len: usize, max_properties: usize) -> Self {
        Self {
            max_value_len,
            max_properties,
        }
    }

    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    pub fn max_properties(&self) -> usize {
        self.max_properties
    }

    /// Reads `(name, value)` pairs as the HTTP server hands them over.
    pub fn extract<'a, I>(&self, headers: I) -> Result<FloopyHeaders>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut collected = Collected::default();
        for (name, value) in headers {
            let Some((header, source)) = Header::from_name(name) else {
                continue;
            };
            let value = self.checked_value(name, value)?;
            collected.take(header, source, name, value, self.max_properties)?;
        }
        collected.finish(self.max_properties)
    }

    /// As [`extract`](Self::extract), also given every header name the request carried. A
    /// header the gateway reads that is named there but has no value in `headers` is refused:
    /// the HTTP server dropped its value because it could not decode it as text (granian hands
    /// over only values of printable ASCII and tabs), and acting as if it were absent would
    /// silently change the request (a session, a project, a fallback lost).
    pub fn extract_named<'a, 'n, N>(
        &self,
        headers: &[(&'a [u8], &'a [u8])],
        names: N,
    ) -> Result<FloopyHeaders>
    where
        N: IntoIterator<Item = &'n [u8]>,
    {
        for name in names {
            let has_value = || headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
            if Header::from_name(name).is_some() && !has_value() {
                return Err(header_error(name, UNREADABLE));
            }
        }
        self.extract(headers.iter().copied())
    }

    fn checked_value<'v>(&self, name: &[u8], value: &'v [u8]) -> Result<&'v str> {
        if value.len() > self.max_value_len {
            return Err(header_error(
                name,
                format_args!("is longer than {} bytes", self.max_value_len),
            ));
        }
        if value.iter().any(|&byte| is_control(byte)) {
            return Err(header_error(name, "contains a control character"));
        }
        let text =
            std::str::from_utf8(value).map_err(|_| header_error(name, "is not valid UTF-8"))?;
        Ok(text.trim_matches([' ', '\t']))
    }
}

const UNREADABLE: &str = "could not be read as text: its value holds bytes outside printable ASCII";

/// Control characters other than the horizontal tab, which HTTP allows inside values.
fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

fn header_error(name: &[u8], complaint: impl std::fmt::Display) -> Error {
    let param = lower_name(name);
    let message = format!("header `{param}` {complaint}");
    Error::invalid_header(param, message)
}

fn lower_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_lowercase()
}

/// A header the gateway reads, known by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header<'n> {
    Authorization,
    ApiKey,
    UserAgent,
    ForwardedFor,
    CacheControl,
    SessionId,
    SessionName,
    SessionPath,
    ProjectId,
    UserId,
    ModelOverride,
    RoutingRule,
    Fallback,
    CacheEnabled,
    CacheAdvanced,
    CacheSeed,
    CacheBucketMaxSize,
    CacheIgnoreKeys,
    LlmSecurityEnabled,
    /// `floopy-property-<name>`, with the name as sent.
    Property(&'n [u8]),
}

const STANDARD_HEADERS: [(&[u8], Header<'static>); 5] = [
    (b"authorization", Header::Authorization),
    (b"x-api-key", Header::ApiKey),
    (b"user-agent", Header::UserAgent),
    (b"x-forwarded-for", Header::ForwardedFor),
    (b"cache-control", Header::CacheControl),
];

/// Where a header's name came from: Floopy's own vocabulary, or Helicone's alias of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Floopy,
    Helicone,
}

/// The names after the `helicone-` prefix that have a Floopy equivalent, with its header.
/// `helicone-auth`, `helicone-ratelimit-policy` and the rest are not read.
const HELICONE_HEADERS: [(&[u8], Header<'static>); 9] = [
    (b"session-id", Header::SessionId),
    (b"session-name", Header::SessionName),
    (b"session-path", Header::SessionPath),
    (b"user-id", Header::UserId),
    (b"fallback", Header::Fallback),
    (b"cache-enabled", Header::CacheEnabled),
    (b"cache-seed", Header::CacheSeed),
    (b"cache-bucket-max-size", Header::CacheBucketMaxSize),
    (b"llm-security-enabled", Header::LlmSecurityEnabled),
];

/// The names after the `floopy-` (or `x-floopy-`) prefix.
const FLOOPY_HEADERS: [(&[u8], Header<'static>); 14] = [
    (b"session-id", Header::SessionId),
    (b"session-name", Header::SessionName),
    (b"session-path", Header::SessionPath),
    (b"project-id", Header::ProjectId),
    (b"user-id", Header::UserId),
    (b"model-override", Header::ModelOverride),
    (b"routing-rule", Header::RoutingRule),
    (b"fallback", Header::Fallback),
    (b"cache-enabled", Header::CacheEnabled),
    (b"cache-advanced", Header::CacheAdvanced),
    (b"cache-seed", Header::CacheSeed),
    (b"cache-bucket-max-size", Header::CacheBucketMaxSize),
    (b"cache-ignore-keys", Header::CacheIgnoreKeys),
    (b"llm-security-enabled", Header::LlmSecurityEnabled),
];

impl<'n> Header<'n> {
    fn from_name(name: &'n [u8]) -> Option<(Self, Source)> {
        let floopy_name = strip_prefix_ignore_case(name, b"floopy-")
            .or_else(|| strip_prefix_ignore_case(name, b"x-floopy-"));
        if let Some(rest) = floopy_name {
            return Self::from_floopy_name(rest).map(|header| (header, Source::Floopy));
        }
        if let Some(rest) = strip_prefix_ignore_case(name, b"helicone-") {
            return Self::from_helicone_name(rest).map(|header| (header, Source::Helicone));
        }
        find_ignore_case(&STANDARD_HEADERS, name).map(|header| (header, Source::Floopy))
    }

    fn from_helicone_name(rest: &'n [u8]) -> Option<Self> {
        if let Some(property) = strip_prefix_ignore_case(rest, b"property-") {
            return Some(Self::Property(property));
        }
        find_ignore_case(&HELICONE_HEADERS, rest)
    }

    fn from_floopy_name(rest: &'n [u8]) -> Option<Self> {
        if let Some(property) = strip_prefix_ignore_case(rest, b"property-") {
            return Some(Self::Property(property));
        }
        find_ignore_case(&FLOOPY_HEADERS, rest)
    }
}

fn find_ignore_case<'n>(table: &[(&[u8], Header<'static>)], name: &[u8]) -> Option<Header<'n>> {
    table
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, header)| header)
}

fn strip_prefix_ignore_case<'n>(name: &'n [u8], prefix: &[u8]) -> Option<&'n [u8]> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

/// Values as they arrive; some are only settled once every header has been seen.
#[derive(Default)]
struct Collected {
    headers: FloopyHeaders,
    /// What Helicone's aliases said; settled under `headers` in [`Collected::finish`].
    aliases: FloopyHeaders,
    bearer: Option<String>,
    x_api_key: Option<String>,
    no_store: bool,
}

impl Collected {
    fn take(
        &mut self,
        header: Header<'_>,
        source: Source,
        name: &[u8],
        value: &str,
        max_properties: usize,
    ) -> Result<()> {
        let headers = match source {
            Source::Floopy => &mut self.headers,
            Source::Helicone => &mut self.aliases,
        };
        match header {
            Header::Authorization => self.bearer = bearer_token(value).map(str::to_owned),
            Header::ApiKey => self.x_api_key = text(value),
            Header::UserAgent => headers.user_agent = text(value),
            Header::ForwardedFor => {
                if headers.forwarded_for.is_none() {
                    headers.forwarded_for = first_address(value);
                }
            }
            Header::CacheControl => {
                let directives = CacheControl::parse(name, value)?;
                headers.cache_max_age = directives.max_age.or(headers.cache_max_age);
                self.no_store |= directives.no_store;
            }
            Header::SessionId => headers.session_id = text(value),
            Header::SessionName => headers.session_name = text(value),
            Header::SessionPath => headers.session_path = text(value),
            Header::ProjectId => headers.project_id = text(value),
            Header::UserId => headers.user_id = text(value),
            Header::ModelOverride => headers.model_override = text(value),
            Header::RoutingRule => headers.routing_rule = text(value),
            Header::Fallback => headers.fallbacks.extend(list(value)),
            Header::CacheEnabled => headers.cache_enabled = Some(boolean(name, value)?),
            Header::CacheAdvanced => headers.cache_advanced = boolean(name, value)?,
            Header::CacheSeed => headers.cache_seed = text(value),
            Header::CacheBucketMaxSize => {
                headers.cache_bucket_max_size = Some(positive_integer(name, value)?)
            }
            Header::CacheIgnoreKeys => headers.cache_ignore_keys.extend(list(value)),
            Header::LlmSecurityEnabled => {
                headers.llm_security_enabled = Some(boolean(name, value)?)
            }
            Header::Property(property) => set_property(
                &mut headers.properties,
                name,
                property,
                value,
                max_properties,
            )?,
        }
        Ok(())
    }

    fn finish(self, max_properties: usize) -> Result<FloopyHeaders> {
        let mut headers = self.headers;
        settle_aliases(&mut headers, self.aliases, max_properties)?;
        headers.api_key = self.bearer.or(self.x_api_key);
        if headers.cache_enabled.is_none() && self.no_store {
            headers.cache_enabled = Some(false);
        }
        Ok(headers)
    }
}

/// Fills what no Floopy header set from Helicone's aliases: a Floopy value, a Floopy fallback
/// list or a Floopy property of the same name wins over the alias.
fn settle_aliases(
    headers: &mut FloopyHeaders,
    aliases: FloopyHeaders,
    max_properties: usize,
) -> Result<()> {
    let FloopyHeaders {
        session_id,
        session_name,
        session_path,
        user_id,
        properties,
        fallbacks,
        cache_enabled,
        cache_seed,
        cache_bucket_max_size,
        llm_security_enabled,
        ..
    } = aliases;
    headers.session_id = headers.session_id.take().or(session_id);
    headers.session_name = headers.session_name.take().or(session_name);
    headers.session_path = headers.session_path.take().or(session_path);
    headers.user_id = headers.user_id.take().or(user_id);
    headers.cache_enabled = headers.cache_enabled.or(cache_enabled);
    headers.cache_seed = headers.cache_seed.take().or(cache_seed);
    headers.cache_bucket_max_size = headers.cache_bucket_max_size.or(cache_bucket_max_size);
    headers.llm_security_enabled = headers.llm_security_enabled.or(llm_security_enabled);
    if headers.fallbacks.is_empty() {
        headers.fallbacks = fallbacks;
    }
    for (property, value) in properties {
        if headers
            .properties
            .iter()
            .any(|(known, _)| *known == property)
        {
            continue;
        }
        if headers.properties.len() == max_properties {
            let name = format!("helicone-property-{property}");
            let complaint =
                format_args!("is one property too many: at most {max_properties} are allowed");
            return Err(header_error(name.as_bytes(), complaint));
        }
        headers.properties.push((property, value));
    }
    Ok(())
}

fn text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Comma-separated items, trimmed, empties dropped.
fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
}

fn first_address(value: &str) -> Option<String> {
    value
        .split(',')
        .next()
        .and_then(|address| text(address.trim()))
}

/// The key of `Bearer <key>` (the scheme in any case); other schemes are not ours.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, key) = value.split_once([' ', '\t'])?;
    let key = key.trim_matches([' ', '\t']);
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

fn boolean(name: &[u8], value: &str) -> Result<bool> {
    if value.eq_ignore_ascii_case("true") || value == "1" {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") || value == "0" {
        Ok(false)
    } else {
        Err(header_error(name, "must be true or false"))
    }
}

fn positive_integer(name: &[u8], value: &str) -> Result<u64> {
    match digits(value) {
        Some(number) if number > 0 => Ok(number),
        _ => Err(header_error(name, "must be a positive integer")),
    }
}

/// A plain decimal number: no sign, no spaces, no overflow.
fn digits(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn set_property(
    properties: &mut Vec<(String, String)>,
    name: &[u8],
    property: &[u8],
    value: &str,
    max_properties: usize,
) -> Result<()> {
    if property.is_empty() {
        let complaint = format_args!("has no property name after `{}`", lower_name(name));
        return Err(header_error(name, complaint));
    }
    let property = lower_name(property);
    if let Some(existing) = properties.iter_mut().find(|(known, _)| *known == property) {
        existing.1 = value.to_owned();
        return Ok(());
    }
    if properties.len() == max_properties {
        let complaint =
            format_args!("is one property too many: at most {max_properties} are allowed");
        return Err(header_error(name, complaint));
    }
    properties.push((property, value.to_owned()));
    Ok(())
}

/// The two `cache-control` directives the cache honours.
#[derive(Debug, Default, PartialEq, Eq)]
struct CacheControl {
    max_age: Option<u64>,
    /// `no-store` or `no-cache`: the client wants neither a cached answer nor its answer kept.
    no_store: bool,
}

impl CacheControl {
    fn parse(name: &[u8], value: &str) -> Result<Self> {
        let mut directives = Self::default();
        for directive in value.split(',').map(str::trim) {
            let (key, argument) = match directive.split_once('=') {
                Some((key, argument)) => (key.trim(), Some(argument.trim())),
                None => (directive, None),
            };
            if key.eq_ignore_ascii_case("max-age") {
                let seconds = argument
                    .map(|argument| argument.trim_matches('"'))
                    .and_then(digits);
                let seconds = seconds.ok_or_else(|| {
                    header_error(name, "has a max-age that is not a number of seconds")
                })?;
                directives.max_age = Some(seconds);
            } else if key.eq_ignore_ascii_case("no-store") || key.eq_ignore_ascii_case("no-cache") {
                directives.no_store = true;
            }
        }
        Ok(directives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(headers: &[(&str, &str)]) -> Result<FloopyHeaders> {
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        HeaderExtractor::default().extract(pairs)
    }

    fn header_error_of(headers: &[(&str, &str)]) -> (String, String) {
        match extract(headers) {
            Err(Error::InvalidHeader { param, message }) => (param, message),
            other => panic!("expected a header error, got {other:?}"),
        }
    }

    #[test]
    fn no_headers_give_the_defaults() {
        assert_eq!(extract(&[]).unwrap(), FloopyHeaders::default());
    }

    #[test]
    fn reads_every_floopy_header() {
        let headers = extract(&[
            ("floopy-session-id", "s1"),
            ("floopy-session-name", "Checkout"),
            ("floopy-session-path", "/cart/pay"),
            ("floopy-project-id", "p1"),
            ("floopy-user-id", "u1"),
            ("floopy-property-team", "search"),
            ("floopy-model-override", "gpt-4o-mini"),
            ("floopy-routing-rule", "cheap"),
            ("floopy-fallback", "a, b,,c "),
            ("floopy-cache-enabled", "true"),
            ("floopy-cache-advanced", "TRUE"),
            ("floopy-cache-seed", "seed-1"),
            ("floopy-cache-bucket-max-size", "3"),
            ("floopy-cache-ignore-keys", "temperature, seed"),
            ("cache-control", "public, max-age=600"),
            ("floopy-llm-security-enabled", "0"),
            ("user-agent", "openai-python/1.50"),
            ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
            ("authorization", "Bearer sk-floopy-123"),
        ])
        .unwrap();
        let expected = FloopyHeaders {
            api_key: Some("sk-floopy-123".into()),
            session_id: Some("s1".into()),
            session_name: Some("Checkout".into()),
            session_path: Some("/cart/pay".into()),
            project_id: Some("p1".into()),
            user_id: Some("u1".into()),
            properties: vec![("team".into(), "search".into())],
            model_override: Some("gpt-4o-mini".into()),
            routing_rule: Some("cheap".into()),
            fallbacks: vec!["a".into(), "b".into(), "c".into()],
            cache_enabled: Some(true),
            cache_advanced: true,
            cache_seed: Some("seed-1".into()),
            cache_bucket_max_size: Some(3),
            cache_ignore_keys: vec!["temperature".into(), "seed".into()],
            cache_max_age: Some(600),
            llm_security_enabled: Some(false),
            user_agent: Some("openai-python/1.50".into()),
            forwarded_for: Some("203.0.113.7".into()),
        };
        assert_eq!(headers, expected);
    }

    #[test]
    fn names_are_case_insensitive_and_x_floopy_is_accepted() {
        let headers = extract(&[
            ("X-Floopy-Session-Id", "s1"),
            ("FLOOPY-PROJECT-ID", "p1"),
            ("x-floopy-property-Team-Name", "Search"),
            ("Floopy-Cache-Enabled", "False"),
        ])
        .unwrap();
        assert_eq!(headers.session_id.as_deref(), Some("s1"));
        assert_eq!(headers.project_id.as_deref(), Some("p1"));
        assert_eq!(
            headers.properties,
            vec![("team-name".into(), "Search".into())]
        );
        assert_eq!(headers.cache_enabled, Some(false));
    }

    #[test]
    fn api_key_prefers_bearer_over_x_api_key() {
        let both = extract(&[("x-api-key", "k2"), ("Authorization", "bearer  k1 ")]).unwrap();
        assert_eq!(both.api_key.as_deref(), Some("k1"));
        let other_scheme = extract(&[("authorization", "Basic abc"), ("x-api-key", "k2")]).unwrap();
        assert_eq!(other_scheme.api_key.as_deref(), Some("k2"));
        let empty_bearer = extract(&[("authorization", "Bearer ")]).unwrap();
        assert_eq!(empty_bearer.api_key, None);
        let no_key = extract(&[("authorization", "Bearer")]).unwrap();
        assert_eq!(no_key.api_key, None);
    }

    #[test]
    fn booleans_accept_true_false_one_zero() {
        for (value, expected) in [
            ("true", true),
            ("True", true),
            ("1", true),
            ("FALSE", false),
            ("0", false),
        ] {
            let headers = extract(&[("floopy-llm-security-enabled", value)]).unwrap();
            assert_eq!(headers.llm_security_enabled, Some(expected), "{value}");
        }
        let (param, message) = header_error_of(&[("Floopy-Cache-Enabled", "yes")]);
        assert_eq!(param, "floopy-cache-enabled");
        assert_eq!(
            message,
            "header `floopy-cache-enabled` must be true or false"
        );
    }

    #[test]
    fn bucket_size_is_a_positive_integer() {
        for value in ["0", "-1", "+2", "two", "1.5", "", "99999999999999999999999"] {
            let (param, _) = header_error_of(&[("floopy-cache-bucket-max-size", value)]);
            assert_eq!(param, "floopy-cache-bucket-max-size", "{value}");
        }
    }

    #[test]
    fn cache_control_max_age_among_other_directives() {
        let headers =
            extract(&[("cache-control", "private, Max-Age=\"30\", must-revalidate")]).unwrap();
        assert_eq!(headers.cache_max_age, Some(30));
        assert_eq!(headers.cache_enabled, None);
        let (param, message) = header_error_of(&[("Cache-Control", "max-age=soon")]);
        assert_eq!(param, "cache-control");
        assert_eq!(
            message,
            "header `cache-control` has a max-age that is not a number of seconds"
        );
    }

    #[test]
    fn no_store_turns_the_cache_off_unless_floopy_says_otherwise() {
        for directive in ["no-store", "No-Cache", "max-age=5, no-store"] {
            let headers = extract(&[("cache-control", directive)]).unwrap();
            assert_eq!(headers.cache_enabled, Some(false), "{directive}");
        }
        let explicit = extract(&[
            ("cache-control", "no-store"),
            ("floopy-cache-enabled", "true"),
        ]);
        assert_eq!(explicit.unwrap().cache_enabled, Some(true));
        let before = extract(&[
            ("floopy-cache-enabled", "true"),
            ("cache-control", "no-cache"),
        ]);
        assert_eq!(before.unwrap().cache_enabled, Some(true));
    }

    #[test]
    fn lists_are_split_trimmed_and_repeated_headers_add_up() {
        let headers = extract(&[
            ("floopy-fallback", " ,gpt-4o , "),
            ("x-floopy-fallback", "claude-sonnet"),
            ("floopy-cache-ignore-keys", ""),
        ])
        .unwrap();
        assert_eq!(headers.fallbacks, vec!["gpt-4o", "claude-sonnet"]);
        assert!(headers.cache_ignore_keys.is_empty());
    }

    #[test]
    fn forwarded_for_keeps_the_first_address() {
        let headers = extract(&[
            ("x-forwarded-for", " 198.51.100.2 ,10.0.0.1"),
            ("X-Forwarded-For", "10.9.9.9"),
        ])
        .unwrap();
        assert_eq!(headers.forwarded_for.as_deref(), Some("198.51.100.2"));
    }

    #[test]
    fn empty_text_values_count_as_absent() {
        let headers = extract(&[("floopy-user-id", "  "), ("floopy-session-id", "")]).unwrap();
        assert_eq!(headers.user_id, None);
        assert_eq!(headers.session_id, None);
    }

    #[test]
    fn properties_are_limited_and_need_a_name() {
        let extractor = HeaderExtractor::new(4096, 2);
        let pairs: [(&[u8], &[u8]); 3] = [
            (b"floopy-property-a", b"1"),
            (b"floopy-property-b", b"2"),
            (b"floopy-property-c", b"3"),
        ];
        match extractor.extract(pairs) {
            Err(Error::InvalidHeader { param, message }) => {
                assert_eq!(param, "floopy-property-c");
                assert!(message.contains("at most 2"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let (param, _) = header_error_of(&[("floopy-property-", "x")]);
        assert_eq!(param, "floopy-property-");
    }

    #[test]
    fn a_repeated_property_replaces_its_value_without_counting_twice() {
        let extractor = HeaderExtractor::new(4096, 1);
        let pairs: [(&[u8], &[u8]); 2] =
            [(b"floopy-property-a", b"1"), (b"X-Floopy-Property-A", b"2")];
        let headers = extractor.extract(pairs).unwrap();
        assert_eq!(headers.properties, vec![("a".into(), "2".into())]);
    }

    #[test]
    fn values_we_read_are_checked() {
        let extractor = HeaderExtractor::new(8, 64);
        let too_long: [(&[u8], &[u8]); 1] = [(b"Floopy-Session-Id", b"123456789")];
        let err = extractor.extract(too_long).unwrap_err();
        assert_eq!(err.param(), Some("floopy-session-id"));
        assert_eq!(
            err.to_string(),
            "header `floopy-session-id` is longer than 8 bytes"
        );

        let control: [(&[u8], &[u8]); 1] = [(b"floopy-user-id", b"a\x00b")];
        let err = extractor.extract(control).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header `floopy-user-id` contains a control character"
        );

        let delete: [(&[u8], &[u8]); 1] = [(b"authorization", b"Bearer \x7f")];
        assert!(extractor.extract(delete).is_err());

        let not_utf8: [(&[u8], &[u8]); 1] = [(b"user-agent", b"caf\xe9")];
        let err = extractor.extract(not_utf8).unwrap_err();
        assert_eq!(err.to_string(), "header `user-agent` is not valid UTF-8");
    }

    #[test]
    fn tabs_are_allowed_inside_values() {
        let headers = extract(&[("floopy-session-name", "a\tb")]).unwrap();
        assert_eq!(headers.session_name.as_deref(), Some("a\tb"));
    }

    #[test]
    fn headers_we_do_not_read_are_not_checked() {
        let extractor = HeaderExtractor::new(4, 64);
        let pairs: [(&[u8], &[u8]); 3] = [
            (b"cookie", b"\xff\x00 far too long"),
            (b"floopy-unknown", b"\x01"),
            (b"x-floopy", b"\x01"),
        ];
        assert_eq!(extractor.extract(pairs).unwrap(), FloopyHeaders::default());
    }

    #[test]
    fn a_read_header_whose_value_the_server_dropped_is_refused() {
        let extractor = HeaderExtractor::default();
        let kept: [(&[u8], &[u8]); 1] = [(b"floopy-user-id", b"u1")];
        let names: [&[u8]; 3] = [b"floopy-user-id", b"X-Floopy-Session-Name", b"x-other"];
        match extractor.extract_named(&kept, names) {
            Err(Error::InvalidHeader { param, message }) => {
                assert_eq!(param, "x-floopy-session-name");
                assert!(message.contains("outside printable ASCII"), "{message}");
            }
            other => panic!("expected a header error, got {other:?}"),
        }
    }

    #[test]
    fn helicone_headers_are_read_as_aliases() {
        let headers = extract(&[
            ("Helicone-Session-Id", "s1"),
            ("Helicone-Session-Name", "Checkout"),
            ("Helicone-Session-Path", "/cart/pay"),
            ("Helicone-User-Id", "u1"),
            ("Helicone-Property-Team", "search"),
            ("Helicone-Cache-Enabled", "true"),
            ("Helicone-Cache-Seed", "seed-1"),
            ("Helicone-Cache-Bucket-Max-Size", "3"),
            ("Helicone-Fallback", "gpt-4o-mini, claude-haiku"),
            ("Helicone-LLM-Security-Enabled", "true"),
        ])
        .unwrap();
        assert_eq!(headers.session_id.as_deref(), Some("s1"));
        assert_eq!(headers.session_name.as_deref(), Some("Checkout"));
        assert_eq!(headers.session_path.as_deref(), Some("/cart/pay"));
        assert_eq!(headers.user_id.as_deref(), Some("u1"));
        assert_eq!(headers.properties, vec![("team".into(), "search".into())]);
        assert_eq!(headers.cache_enabled, Some(true));
        assert_eq!(headers.cache_seed.as_deref(), Some("seed-1"));
        assert_eq!(headers.cache_bucket_max_size, Some(3));
        assert_eq!(headers.fallbacks, vec!["gpt-4o-mini", "claude-haiku"]);
        assert_eq!(headers.llm_security_enabled, Some(true));
    }

    #[test]
    fn a_floopy_header_wins_over_its_helicone_alias_in_any_order() {
        for reversed in [false, true] {
            let mut pairs = vec![
                ("floopy-session-id", "floopy"),
                ("floopy-property-team", "floopy"),
                ("floopy-fallback", "a"),
                ("floopy-cache-enabled", "false"),
                ("helicone-session-id", "helicone"),
                ("helicone-property-team", "helicone"),
                ("helicone-property-env", "prod"),
                ("helicone-fallback", "b"),
                ("helicone-cache-enabled", "true"),
            ];
            if reversed {
                pairs.reverse();
            }
            let headers = extract(&pairs).unwrap();
            assert_eq!(headers.session_id.as_deref(), Some("floopy"));
            assert_eq!(headers.fallbacks, vec!["a"]);
            assert_eq!(headers.cache_enabled, Some(false));
            let team = headers.properties.iter().find(|(name, _)| name == "team");
            assert_eq!(team.map(|(_, value)| value.as_str()), Some("floopy"));
            assert!(headers.properties.contains(&("env".into(), "prod".into())));
        }
    }

    #[test]
    fn helicone_auth_and_headers_without_an_equivalent_are_not_read() {
        let extractor = HeaderExtractor::new(4, 64);
        let pairs: [(&[u8], &[u8]); 3] = [
            (b"Helicone-Auth", b"Bearer sk-helicone-far-too-long"),
            (b"Helicone-RateLimit-Policy", b"1000;w=60"),
            (b"helicone-retry-enabled", b""),
        ];
        assert_eq!(extractor.extract(pairs).unwrap(), FloopyHeaders::default());
    }

    #[test]
    fn helicone_values_are_checked_under_their_own_name() {
        let (param, message) = header_error_of(&[("Helicone-Cache-Enabled", "maybe")]);
        assert_eq!(param, "helicone-cache-enabled");
        assert!(message.contains("true or false"), "{message}");
        let (param, message) = header_error_of(&[("helicone-property-", "x")]);
        assert_eq!(param, "helicone-property-");
        assert!(message.contains("after `helicone-property-`"), "{message}");
    }

    #[test]
    fn alias_properties_count_toward_the_limit() {
        let extractor = HeaderExtractor::new(4096, 2);
        let pairs: [(&[u8], &[u8]); 4] = [
            (b"floopy-property-a", b"1"),
            (b"helicone-property-a", b"2"),
            (b"helicone-property-b", b"3"),
            (b"helicone-property-c", b"4"),
        ];
        match extractor.extract(pairs) {
            Err(Error::InvalidHeader { param, .. }) => assert_eq!(param, "helicone-property-c"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dropped_headers_the_gateway_does_not_read_are_ignored() {
        let extractor = HeaderExtractor::default();
        let kept: [(&[u8], &[u8]); 1] = [(b"Floopy-User-Id", b"u1")];
        let names: [&[u8]; 3] = [b"floopy-user-id", b"x-other", b"cookie"];
        let headers = extractor.extract_named(&kept, names).unwrap();
        assert_eq!(headers.user_id.as_deref(), Some("u1"));
    }
}
