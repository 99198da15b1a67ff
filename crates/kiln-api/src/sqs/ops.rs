//! The SQS operations, protocol-neutral: each takes the request as the JSON protocol's
//! document (the query protocol's parameters are converted to it first) and returns the JSON
//! protocol's result document (rendered as XML for query clients).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kiln_queues::{
    DeleteEntry, MessageAttributeValue, QueueError, QueueInfo, QueueService, ReceiveRequest,
    ReceivedMessage, SendOutcome, SendRequest,
};
use serde_json::{Map, Value, json};

use super::error::{SqsError, SqsErrorCode};

/// Most entries in one batch request.
const MAX_BATCH_ENTRIES: usize = 10;
/// Most bytes of all messages of one SendMessageBatch together.
const MAX_BATCH_BYTES: usize = 1_048_576;

/// What an operation needs besides its input.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub queues: &'a QueueService,
    /// `http://HOST`, from the request's Host header: queue URLs point back at it.
    pub base_url: String,
    /// The queue named by the request path (`/ACCOUNT/NAME`), for query clients that post to
    /// the queue URL instead of passing `QueueUrl`.
    pub path_queue: Option<String>,
    /// The request's `X-Amzn-Trace-Id`: SQS keeps it as the messages' `AWSTraceHeader`
    /// unless a message names its own.
    pub trace_header: Option<String>,
}

/// Every SQS operation, in the service model's order.
pub(crate) const OPERATIONS: &[&str] = &[
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];

pub(crate) async fn run(
    context: &Context<'_>,
    operation: &str,
    input: &Value,
) -> Result<Value, SqsError> {
    match operation {
        "CreateQueue" => create_queue(context, input).await,
        "GetQueueUrl" => get_queue_url(context, input),
        "ListQueues" => list_queues(context, input),
        "DeleteQueue" => {
            let queue = queue_name(context, input)?;
            context.queues.delete_queue(&queue).await?;
            Ok(json!({}))
        }
        "PurgeQueue" => {
            let queue = queue_name(context, input)?;
            context.queues.purge_queue(&queue).await?;
            Ok(json!({}))
        }
        "GetQueueAttributes" => get_queue_attributes(context, input),
        "SetQueueAttributes" => {
            let queue = queue_name(context, input)?;
            let attributes = string_map(input, "Attributes")?;
            context.queues.set_attributes(&queue, &attributes).await?;
            Ok(json!({}))
        }
        "SendMessage" => send_message(context, input).await,
        "SendMessageBatch" => send_message_batch(context, input).await,
        "ReceiveMessage" => receive_message(context, input).await,
        "DeleteMessage" => {
            let queue = queue_name(context, input)?;
            let handle = required_string(input, "ReceiptHandle")?;
            context.queues.delete(&queue, handle).await?;
            Ok(json!({}))
        }
        "DeleteMessageBatch" => delete_message_batch(context, input).await,
        "ChangeMessageVisibility" => {
            let queue = queue_name(context, input)?;
            let handle = required_string(input, "ReceiptHandle")?;
            let timeout =
                visibility_timeout(input)?.ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
            context
                .queues
                .change_visibility(&queue, handle, timeout)
                .await?;
            Ok(json!({}))
        }
        "ChangeMessageVisibilityBatch" => change_visibility_batch(context, input).await,
        "ListDeadLetterSourceQueues" => list_dead_letter_source_queues(context, input),
        "TagQueue" => {
            let queue = queue_name(context, input)?;
            let tags = string_map(input, "Tags")?;
            context.queues.tag_queue(&queue, tags).await?;
            Ok(json!({}))
        }
        "UntagQueue" => {
            let queue = queue_name(context, input)?;
            let keys = string_list(input, "TagKeys")?;
            context.queues.untag_queue(&queue, &keys).await?;
            Ok(json!({}))
        }
        "ListQueueTags" => {
            let queue = queue_name(context, input)?;
            let tags = context.queues.list_tags(&queue)?;
            Ok(if tags.is_empty() {
                json!({})
            } else {
                json!({ "Tags": tags })
            })
        }
        known if OPERATIONS.contains(&known) => Err(SqsError::new(
            SqsErrorCode::UnsupportedOperation,
            format!("{known} is not supported by Kiln."),
        )),
        other => Err(SqsError::new(
            SqsErrorCode::InvalidAction,
            format!("The action {other} is not valid for this endpoint."),
        )),
    }
}

fn queue_url(context: &Context<'_>, info: &QueueInfo) -> String {
    format!("{}{}", context.base_url, info.url_path)
}

/// The queue named by `QueueUrl` (its last path segment; the account segment must be ours).
fn queue_name(context: &Context<'_>, input: &Value) -> Result<String, SqsError> {
    let url = match input.get("QueueUrl").and_then(Value::as_str) {
        Some(url) => url.to_owned(),
        None => context
            .path_queue
            .clone()
            .ok_or_else(|| SqsError::missing("QueueUrl"))?,
    };
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => url.trim_start_matches('/'),
    };
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let name = segments.pop().ok_or_else(|| {
        SqsError::new(
            SqsErrorCode::QueueDoesNotExist,
            "The specified queue does not exist.",
        )
    })?;
    if let Some(account) = segments.last()
        && *account != context.queues.account().account_id
    {
        return Err(QueueError::QueueDoesNotExist.into());
    }
    Ok(name.to_owned())
}

fn required_string<'a>(input: &'a Value, key: &str) -> Result<&'a str, SqsError> {
    match input.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(Value::Null) | None => Err(SqsError::missing(key)),
        Some(other) => Err(SqsError::invalid_value(key, other, "Must be a string.")),
    }
}

fn optional_string(input: &Value, key: &str) -> Result<Option<String>, SqsError> {
    match input.get(key) {
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(SqsError::invalid_value(key, other, "Must be a string.")),
    }
}

/// An integer parameter (JSON numbers, or strings from the query protocol).
fn optional_int(input: &Value, key: &str) -> Result<Option<i64>, SqsError> {
    match input.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| SqsError::invalid_value(key, n, "Must be an integer.")),
        Some(Value::String(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| SqsError::invalid_value(key, text, "Must be an integer.")),
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(SqsError::invalid_value(key, other, "Must be an integer.")),
    }
}

fn string_map(input: &Value, key: &str) -> Result<BTreeMap<String, String>, SqsError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(text) => Ok((k.clone(), text.clone())),
                other => Ok((k.clone(), other.to_string())),
            })
            .collect(),
        Some(_) => Err(SqsError::invalid(format!(
            "{key} must be a map of strings."
        ))),
    }
}

fn string_list(input: &Value, key: &str) -> Result<Vec<String>, SqsError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SqsError::invalid(format!("{key} must be a list of strings.")))
            })
            .collect(),
        Some(_) => Err(SqsError::invalid(format!(
            "{key} must be a list of strings."
        ))),
    }
}

async fn create_queue(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let name = required_string(input, "QueueName")?;
    let attributes = string_map(input, "Attributes")?;
    let tags = string_map(input, "tags")?;
    let info = context.queues.create_queue(name, &attributes, tags).await?;
    Ok(json!({ "QueueUrl": queue_url(context, &info) }))
}

fn get_queue_url(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let name = required_string(input, "QueueName")?;
    if let Some(owner) = optional_string(input, "QueueOwnerAWSAccountId")?
        && owner != context.queues.account().account_id
    {
        return Err(QueueError::QueueDoesNotExist.into());
    }
    let info = context.queues.queue_info(name)?;
    Ok(json!({ "QueueUrl": queue_url(context, &info) }))
}

/// One page of `urls` after `NextToken`, up to `MaxResults` (1 to 1000).
fn paginate(input: &Value, urls: Vec<(String, String)>, list_key: &str) -> Result<Value, SqsError> {
    let max = optional_int(input, "MaxResults")?;
    if let Some(max) = max
        && !(1..=1000).contains(&max)
    {
        return Err(SqsError::invalid_value(
            "MaxResults",
            max,
            "MaxResults must be an integer between 1 and 1000.",
        ));
    }
    let after = match optional_string(input, "NextToken")? {
        Some(token) => Some(
            BASE64
                .decode(&token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SqsError::invalid("Invalid NextToken value."))?,
        ),
        None => None,
    };
    let remaining: Vec<(String, String)> = urls
        .into_iter()
        .filter(|(name, _)| after.as_ref().is_none_or(|after| name > after))
        .collect();
    let limit = max.map_or(1000, |m| usize::try_from(m).unwrap_or(1000));
    let mut output = Map::new();
    let page: Vec<&(String, String)> = remaining.iter().take(limit).collect();
    if !page.is_empty() || list_key == "queueUrls" {
        output.insert(
            list_key.to_owned(),
            Value::Array(
                page.iter()
                    .map(|(_, url)| Value::String(url.clone()))
                    .collect(),
            ),
        );
    }
    // A NextToken only when the caller asked for pages (MaxResults), as SQS does.
    if max.is_some()
        && remaining.len() > limit
        && let Some((last, _)) = page.last()
    {
        output.insert("NextToken".into(), Value::String(BASE64.encode(last)));
    }
    Ok(Value::Object(output))
}

fn list_queues(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let prefix = optional_string(input, "QueueNamePrefix")?.unwrap_or_default();
    let urls = context
        .queues
        .list_queues(&prefix)
        .into_iter()
        .map(|info| (info.name.clone(), queue_url(context, &info)))
        .collect();
    paginate(input, urls, "QueueUrls")
}

fn list_dead_letter_source_queues(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let queue = queue_name(context, input)?;
    let urls = context
        .queues
        .dead_letter_sources(&queue)?
        .into_iter()
        .map(|info| (info.name.clone(), queue_url(context, &info)))
        .collect();
    paginate(input, urls, "queueUrls")
}

fn get_queue_attributes(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let queue = queue_name(context, input)?;
    let names = string_list(input, "AttributeNames")?;
    let attributes = context.queues.get_attributes(&queue, &names)?;
    Ok(if attributes.is_empty() {
        json!({})
    } else {
        json!({ "Attributes": attributes })
    })
}

fn message_attributes(
    input: &Value,
    key: &str,
) -> Result<BTreeMap<String, MessageAttributeValue>, SqsError> {
    let Some(map) = input.get(key).filter(|v| !v.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let map = map
        .as_object()
        .ok_or_else(|| SqsError::invalid(format!("{key} must be a map.")))?;
    let mut attributes = BTreeMap::new();
    for (name, value) in map {
        let data_type = value
            .get("DataType")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                SqsError::invalid(format!(
                    "The message attribute '{name}' must contain non-empty message attribute type."
                ))
            })?
            .to_owned();
        let string_value = value
            .get("StringValue")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let binary_value = match value.get("BinaryValue").and_then(Value::as_str) {
            Some(encoded) => Some(BASE64.decode(encoded).map_err(|_| {
                SqsError::invalid(format!(
                    "The message attribute '{name}' has an invalid binary value."
                ))
            })?),
            None => None,
        };
        if value.get("StringListValues").is_some() || value.get("BinaryListValues").is_some() {
            return Err(SqsError::invalid(format!(
                "Message attribute list values in SendMessage operation are not supported (attribute '{name}')."
            )));
        }
        attributes.insert(
            name.clone(),
            MessageAttributeValue {
                data_type,
                string_value,
                binary_value,
            },
        );
    }
    Ok(attributes)
}

/// A send request from one SendMessage input or one SendMessageBatch entry; `request_trace`
/// is the request's trace header.
fn send_request(input: &Value, request_trace: Option<&str>) -> Result<SendRequest, SqsError> {
    let body = required_string(input, "MessageBody")?.to_owned();
    let delay = match optional_int(input, "DelaySeconds")? {
        Some(seconds) if !(0..=900).contains(&seconds) => {
            return Err(SqsError::invalid_value(
                "DelaySeconds",
                seconds,
                "DelaySeconds must be >= 0 and <= 900.",
            ));
        }
        Some(seconds) => Some(Duration::from_secs(seconds.unsigned_abs())),
        None => None,
    };
    let trace_header = match input
        .get("MessageSystemAttributes")
        .filter(|v| !v.is_null())
    {
        Some(system) => {
            let system = system
                .as_object()
                .ok_or_else(|| SqsError::invalid("MessageSystemAttributes must be a map."))?;
            let mut trace = None;
            for (name, value) in system {
                if name != "AWSTraceHeader" {
                    return Err(SqsError::invalid(format!(
                        "Message system attribute name '{name}' is invalid."
                    )));
                }
                trace = value
                    .get("StringValue")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            trace
        }
        None => None,
    }
    .or_else(|| request_trace.map(str::to_owned));
    Ok(SendRequest {
        body,
        message_attributes: message_attributes(input, "MessageAttributes")?,
        delay,
        group_id: optional_string(input, "MessageGroupId")?,
        dedup_id: optional_string(input, "MessageDeduplicationId")?,
        trace_header,
    })
}

fn send_result(outcome: &SendOutcome, id: Option<&str>) -> Value {
    let mut result = Map::new();
    if let Some(id) = id {
        result.insert("Id".into(), json!(id));
    }
    result.insert("MessageId".into(), json!(outcome.message_id));
    result.insert("MD5OfMessageBody".into(), json!(outcome.md5_of_body));
    if let Some(md5) = &outcome.md5_of_message_attributes {
        result.insert("MD5OfMessageAttributes".into(), json!(md5));
    }
    if let Some(md5) = &outcome.md5_of_system_attributes {
        result.insert("MD5OfMessageSystemAttributes".into(), json!(md5));
    }
    if let Some(sequence) = &outcome.sequence_number {
        result.insert("SequenceNumber".into(), json!(sequence));
    }
    Value::Object(result)
}

async fn send_message(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let queue = queue_name(context, input)?;
    let request = send_request(input, context.trace_header.as_deref())?;
    let outcome = context.queues.send(&queue, request).await?;
    Ok(send_result(&outcome, None))
}

/// The entries of a batch request, checked as SQS checks them before any entry runs.
fn batch_entries<'a>(input: &'a Value, entry_shape: &str) -> Result<&'a Vec<Value>, SqsError> {
    static EMPTY: Vec<Value> = Vec::new();
    let entries = match input.get("Entries") {
        Some(Value::Array(entries)) => entries,
        None | Some(Value::Null) => &EMPTY,
        Some(_) => return Err(SqsError::invalid("Entries must be a list.")),
    };
    if entries.is_empty() {
        return Err(SqsError::new(
            SqsErrorCode::EmptyBatchRequest,
            format!("There should be at least one {entry_shape} in the request."),
        ));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(SqsError::new(
            SqsErrorCode::TooManyEntriesInBatchRequest,
            format!(
                "Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for entry in entries {
        let id = required_string(entry, "Id")?;
        let valid = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(SqsError::new(
                SqsErrorCode::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(SqsError::new(
                SqsErrorCode::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(entries)
}

fn failed_entry(id: &str, error: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": error.code.is_sender_fault(),
        "Code": error.code.query_code(),
        "Message": error.message,
    })
}

async fn send_message_batch(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let queue = queue_name(context, input)?;
    let entries = batch_entries(input, "SendMessageBatchRequestEntry")?;
    let total: usize = entries
        .iter()
        .map(|entry| {
            entry
                .get("MessageBody")
                .and_then(Value::as_str)
                .map_or(0, str::len)
                + entry
                    .get("MessageAttributes")
                    .map_or(0, |attributes| attributes.to_string().len())
        })
        .sum();
    if total > MAX_BATCH_BYTES {
        return Err(SqsError::new(
            SqsErrorCode::BatchRequestTooLong,
            format!(
                "Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."
            ),
        ));
    }
    let mut ids = Vec::with_capacity(entries.len());
    let mut requests = Vec::with_capacity(entries.len());
    let mut failed = Vec::new();
    for entry in entries {
        let id = required_string(entry, "Id")?;
        match send_request(entry, context.trace_header.as_deref()) {
            Ok(request) => {
                ids.push(id);
                requests.push(request);
            }
            Err(error) => failed.push(failed_entry(id, &error)),
        }
    }
    let outcomes = if requests.is_empty() {
        // Still refuse a queue that does not exist.
        context.queues.queue_info(&queue)?;
        Vec::new()
    } else {
        context.queues.send_batch(&queue, requests).await?
    };
    let mut successful = Vec::new();
    for (id, outcome) in ids.into_iter().zip(outcomes) {
        match outcome {
            Ok(outcome) => successful.push(send_result(&outcome, Some(id))),
            Err(error) => failed.push(failed_entry(id, &error.into())),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

fn visibility_timeout(input: &Value) -> Result<Option<Duration>, SqsError> {
    match optional_int(input, "VisibilityTimeout")? {
        Some(seconds) if !(0..=43_200).contains(&seconds) => Err(SqsError::invalid_value(
            "VisibilityTimeout",
            seconds,
            "Must be >= 0 and <= 43200, if provided.",
        )),
        Some(seconds) => Ok(Some(Duration::from_secs(seconds.unsigned_abs()))),
        None => Ok(None),
    }
}

async fn receive_message(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let queue = queue_name(context, input)?;
    let max = optional_int(input, "MaxNumberOfMessages")?.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(SqsError::invalid_value(
            "MaxNumberOfMessages",
            max,
            "Must be between 1 and 10, if provided.",
        ));
    }
    let wait = match optional_int(input, "WaitTimeSeconds")? {
        Some(seconds) if !(0..=20).contains(&seconds) => {
            return Err(SqsError::invalid_value(
                "WaitTimeSeconds",
                seconds,
                "Must be >= 0 and <= 20, if provided.",
            ));
        }
        Some(seconds) => Duration::from_secs(seconds.unsigned_abs()),
        None => {
            let attributes = context
                .queues
                .get_attributes(&queue, &["ReceiveMessageWaitTimeSeconds".to_owned()])?;
            let seconds = attributes
                .get("ReceiveMessageWaitTimeSeconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Duration::from_secs(seconds)
        }
    };
    let visibility_timeout = visibility_timeout(input)?;
    let mut system_names = string_list(input, "AttributeNames")?;
    system_names.extend(string_list(input, "MessageSystemAttributeNames")?);
    let attribute_names = string_list(input, "MessageAttributeNames")?;
    let messages = context
        .queues
        .receive(
            &queue,
            ReceiveRequest {
                max_messages: usize::try_from(max).unwrap_or(1),
                wait,
                visibility_timeout,
            },
        )
        .await?;
    if messages.is_empty() {
        return Ok(json!({}));
    }
    let rendered: Vec<Value> = messages
        .iter()
        .map(|message| render_message(message, &system_names, &attribute_names))
        .collect();
    Ok(json!({ "Messages": rendered }))
}

fn wants_system_attribute(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == "All" || n == name)
}

fn wants_message_attribute(names: &[String], name: &str) -> bool {
    names.iter().any(|pattern| {
        pattern == "All"
            || pattern == ".*"
            || pattern == name
            || pattern.strip_suffix(".*").is_some_and(|prefix| {
                name.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
    })
}

fn render_message(
    message: &ReceivedMessage,
    system_names: &[String],
    attribute_names: &[String],
) -> Value {
    let mut rendered = Map::new();
    rendered.insert("MessageId".into(), json!(message.message_id));
    rendered.insert("ReceiptHandle".into(), json!(message.receipt_handle));
    rendered.insert("MD5OfBody".into(), json!(message.md5_of_body));
    rendered.insert("Body".into(), json!(message.body));
    let system: Map<String, Value> = message
        .system_attributes
        .iter()
        .filter(|(name, _)| wants_system_attribute(system_names, name))
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    if !system.is_empty() {
        rendered.insert("Attributes".into(), Value::Object(system));
    }
    let selected: BTreeMap<String, MessageAttributeValue> = message
        .message_attributes
        .iter()
        .filter(|(name, _)| wants_message_attribute(attribute_names, name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if let Some(md5) = kiln_queues::md5_of_message_attributes(&selected) {
        rendered.insert("MD5OfMessageAttributes".into(), json!(md5));
        let attributes: Map<String, Value> = selected
            .iter()
            .map(|(name, value)| {
                let mut attribute = Map::new();
                if let Some(text) = &value.string_value {
                    attribute.insert("StringValue".into(), json!(text));
                }
                if let Some(binary) = &value.binary_value {
                    attribute.insert("BinaryValue".into(), json!(BASE64.encode(binary)));
                }
                attribute.insert("DataType".into(), json!(value.data_type));
                (name.clone(), Value::Object(attribute))
            })
            .collect();
        rendered.insert("MessageAttributes".into(), Value::Object(attributes));
    }
    Value::Object(rendered)
}

async fn delete_message_batch(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let queue = queue_name(context, input)?;
    let entries = batch_entries(input, "DeleteMessageBatchRequestEntry")?;
    let mut requests = Vec::with_capacity(entries.len());
    for entry in entries {
        requests.push(DeleteEntry {
            id: required_string(entry, "Id")?.to_owned(),
            receipt_handle: required_string(entry, "ReceiptHandle")?.to_owned(),
        });
    }
    let outcomes = context.queues.delete_batch(&queue, &requests).await?;
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (entry, outcome) in requests.iter().zip(outcomes) {
        match outcome {
            Ok(()) => successful.push(json!({ "Id": entry.id })),
            Err(error) => failed.push(failed_entry(&entry.id, &error.into())),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

async fn change_visibility_batch(context: &Context<'_>, input: &Value) -> Result<Value, SqsError> {
    let queue = queue_name(context, input)?;
    let entries = batch_entries(input, "ChangeMessageVisibilityBatchRequestEntry")?;
    let mut ids = Vec::new();
    let mut requests = Vec::new();
    let mut failed = Vec::new();
    for entry in entries {
        let id = required_string(entry, "Id")?;
        let handle = required_string(entry, "ReceiptHandle")?;
        match visibility_timeout(entry) {
            Ok(timeout) => {
                ids.push(id);
                requests.push((handle.to_owned(), timeout.unwrap_or_default()));
            }
            Err(error) => failed.push(failed_entry(id, &error)),
        }
    }
    let outcomes = context
        .queues
        .change_visibility_batch(&queue, &requests)
        .await?;
    let mut successful = Vec::new();
    for (id, outcome) in ids.into_iter().zip(outcomes) {
        match outcome {
            Ok(()) => successful.push(json!({ "Id": id })),
            Err(error) => failed.push(failed_entry(id, &error.into())),
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_attribute_selection() {
        let names = vec!["foo.*".to_owned(), "exact".to_owned()];
        assert!(wants_message_attribute(&names, "foo.bar"));
        assert!(!wants_message_attribute(&names, "foobar"));
        assert!(wants_message_attribute(&names, "exact"));
        assert!(!wants_message_attribute(&names, "other"));
        assert!(wants_message_attribute(&[".*".to_owned()], "anything"));
        assert!(wants_message_attribute(&["All".to_owned()], "anything"));
    }
}
