//! SQS's older query protocol: form parameters (`Action=SendMessage&QueueUrl=...&
//! MessageAttribute.1.Name=...`) converted to the JSON protocol's input document, and the JSON
//! result document rendered as the query protocol's XML.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::SqsError;

const XML_NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

/// A parameter tree: `A.1.B=x` becomes `{A: {1: {B: x}}}`.
#[derive(Debug, Default)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

/// Converts form parameters (without `Action` and `Version`) to the JSON input document.
pub(crate) fn to_json_input(parameters: &[(String, String)]) -> Value {
    let mut root = Node::default();
    for (key, value) in parameters {
        if key == "Action" || key == "Version" {
            continue;
        }
        let mut node = &mut root;
        for segment in key.split('.') {
            node = node.children.entry(segment.to_owned()).or_default();
        }
        node.value = Some(value.clone());
    }
    structure(&root)
}

/// Entries of a numbered list (`X.1`, `X.2`, ...) in numeric order.
fn numbered(node: &Node) -> Vec<&Node> {
    let mut items: Vec<(u64, &Node)> = node
        .children
        .iter()
        .filter_map(|(index, child)| index.parse().ok().map(|i| (i, child)))
        .collect();
    items.sort_by_key(|(index, _)| *index);
    items.into_iter().map(|(_, child)| child).collect()
}

fn text(node: Option<&Node>) -> Value {
    node.and_then(|n| n.value.clone())
        .map_or(Value::Null, Value::String)
}

fn name_value_map(node: &Node, key_name: &str, value_name: &str) -> Value {
    let mut map = Map::new();
    for item in numbered(node) {
        if let Value::String(key) = text(item.children.get(key_name)) {
            map.insert(key, text(item.children.get(value_name)));
        }
    }
    Value::Object(map)
}

fn message_attributes(node: &Node) -> Value {
    let mut map = Map::new();
    for item in numbered(node) {
        if let Value::String(name) = text(item.children.get("Name")) {
            let mut value = Map::new();
            if let Some(fields) = item.children.get("Value") {
                for (field, child) in &fields.children {
                    if let Some(v) = &child.value {
                        value.insert(field.clone(), Value::String(v.clone()));
                    }
                }
            }
            map.insert(name, Value::Object(value));
        }
    }
    Value::Object(map)
}

fn list(node: &Node) -> Value {
    Value::Array(numbered(node).into_iter().map(|n| text(Some(n))).collect())
}

fn structure(node: &Node) -> Value {
    let mut object = Map::new();
    for (key, child) in &node.children {
        let (name, value) = match key.as_str() {
            "Attribute" => ("Attributes", name_value_map(child, "Name", "Value")),
            "Tag" => ("Tags", name_value_map(child, "Key", "Value")),
            "MessageAttribute" => ("MessageAttributes", message_attributes(child)),
            "MessageSystemAttribute" => ("MessageSystemAttributes", message_attributes(child)),
            "AttributeName" => ("AttributeNames", list(child)),
            "MessageAttributeName" => ("MessageAttributeNames", list(child)),
            "MessageSystemAttributeName" => ("MessageSystemAttributeNames", list(child)),
            "TagKey" => ("TagKeys", list(child)),
            entry if entry.ends_with("BatchRequestEntry") => (
                "Entries",
                Value::Array(numbered(child).into_iter().map(structure).collect()),
            ),
            other => (other, text(Some(child))),
        };
        object.insert(name.to_owned(), value);
    }
    // CreateQueue takes its tags as `tags` in the JSON protocol.
    if let Some(tags) = object.get("Tags").cloned()
        && !object.contains_key("QueueUrl")
        && object.contains_key("QueueName")
    {
        object.remove("Tags");
        object.insert("tags".into(), tags);
    }
    Value::Object(object)
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\r' => escaped.push_str("&#xD;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => escape(text),
        other => escape(&other.to_string()),
    }
}

fn element(out: &mut String, name: &str, body: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(body);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Renders a JSON result member as the query protocol's (flattened) XML.
fn render_member(out: &mut String, operation: &str, key: &str, value: &Value) {
    match (key, value) {
        ("QueueUrls" | "queueUrls", Value::Array(urls)) => {
            for url in urls {
                element(out, "QueueUrl", &scalar(url));
            }
        }
        ("Attributes", Value::Object(map)) => {
            for (name, value) in map {
                let mut inner = String::new();
                element(&mut inner, "Name", &escape(name));
                element(&mut inner, "Value", &scalar(value));
                element(out, "Attribute", &inner);
            }
        }
        ("Tags", Value::Object(map)) => {
            for (name, value) in map {
                let mut inner = String::new();
                element(&mut inner, "Key", &escape(name));
                element(&mut inner, "Value", &scalar(value));
                element(out, "Tag", &inner);
            }
        }
        ("MessageAttributes", Value::Object(map)) => {
            for (name, value) in map {
                let mut fields = String::new();
                if let Value::Object(value) = value {
                    for (field, v) in value {
                        element(&mut fields, field, &scalar(v));
                    }
                }
                let mut inner = String::new();
                element(&mut inner, "Name", &escape(name));
                element(&mut inner, "Value", &fields);
                element(out, "MessageAttribute", &inner);
            }
        }
        ("Messages", Value::Array(messages)) => {
            for message in messages {
                element(out, "Message", &render_structure(operation, message));
            }
        }
        ("Successful", Value::Array(entries)) => {
            let entry_name = format!("{operation}ResultEntry");
            for entry in entries {
                element(out, &entry_name, &render_structure(operation, entry));
            }
        }
        ("Failed", Value::Array(entries)) => {
            for entry in entries {
                element(
                    out,
                    "BatchResultErrorEntry",
                    &render_structure(operation, entry),
                );
            }
        }
        (_, Value::Object(_)) => element(out, key, &render_structure(operation, value)),
        _ => element(out, key, &scalar(value)),
    }
}

fn render_structure(operation: &str, value: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(map) = value {
        for (key, member) in map {
            render_member(&mut out, operation, key, member);
        }
    }
    out
}

/// The query protocol's response document for a JSON result.
pub(crate) fn render_result(operation: &str, result: &Value, request_id: &str) -> String {
    let body = render_structure(operation, result);
    let mut out = String::from("<?xml version=\"1.0\"?>");
    out.push_str(&format!("<{operation}Response xmlns=\"{XML_NAMESPACE}\">"));
    if !body.is_empty() {
        element(&mut out, &format!("{operation}Result"), &body);
    }
    out.push_str("<ResponseMetadata>");
    element(&mut out, "RequestId", request_id);
    out.push_str(&format!("</ResponseMetadata></{operation}Response>"));
    out
}

/// The query protocol's error document.
pub(crate) fn render_error(error: &SqsError, request_id: &str) -> String {
    let fault = if error.code.is_sender_fault() {
        "Sender"
    } else {
        "Receiver"
    };
    format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{XML_NAMESPACE}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>{}</Message><Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        error.code.query_code(),
        escape(&error.message)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn flattened_parameters_become_the_json_document() {
        let input = to_json_input(&params(&[
            ("Action", "SendMessageBatch"),
            ("QueueUrl", "http://h/000000000000/q"),
            ("SendMessageBatchRequestEntry.2.Id", "b"),
            ("SendMessageBatchRequestEntry.2.MessageBody", "two"),
            ("SendMessageBatchRequestEntry.1.Id", "a"),
            ("SendMessageBatchRequestEntry.1.MessageBody", "one"),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name",
                "k",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType",
                "String",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue",
                "v",
            ),
        ]));
        assert_eq!(
            input,
            json!({
                "QueueUrl": "http://h/000000000000/q",
                "Entries": [
                    {"Id": "a", "MessageBody": "one", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
                    {"Id": "b", "MessageBody": "two"},
                ]
            })
        );
        let create = to_json_input(&params(&[
            ("QueueName", "q"),
            ("Attribute.1.Name", "VisibilityTimeout"),
            ("Attribute.1.Value", "40"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "x"),
        ]));
        assert_eq!(
            create,
            json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "40"}, "tags": {"team": "x"}})
        );
    }

    #[test]
    fn results_render_as_flattened_xml() {
        let xml = render_result(
            "ReceiveMessage",
            &json!({"Messages": [{"MessageId": "m", "Body": "<b>", "Attributes": {"SentTimestamp": "1"}}]}),
            "r",
        );
        assert!(xml.contains("<ReceiveMessageResult><Message><MessageId>m</MessageId><Body>&lt;b&gt;</Body><Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute></Message></ReceiveMessageResult>"), "{xml}");
        let empty = render_result("DeleteMessage", &json!({}), "r");
        assert!(!empty.contains("DeleteMessageResult"));
    }
}
