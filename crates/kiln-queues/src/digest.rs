//! The digests SQS returns with every message: MD5 of the body, MD5 of the message attributes
//! (a specific binary encoding, below), and the SHA-256 used for content-based deduplication.

use std::collections::BTreeMap;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::model::MessageAttributeValue;

/// Lower-case hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// `MD5OfMessageAttributes` as SQS computes it, `None` when there are no attributes.
///
/// The attributes are sorted by name; each contributes its name, its data type and its value,
/// each as a 4-byte big-endian length followed by the UTF-8 (or raw) bytes, with one
/// transport-type byte between the type and the value: 1 for string values (`String`,
/// `Number` and their custom types), 2 for binary values.
pub fn md5_of_message_attributes(
    attributes: &BTreeMap<String, MessageAttributeValue>,
) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    Some(md5_hex(&encode_attributes(attributes)))
}

/// The byte string whose MD5 is `MD5OfMessageAttributes` (also used for system attributes).
fn encode_attributes(attributes: &BTreeMap<String, MessageAttributeValue>) -> Vec<u8> {
    fn field(encoded: &mut Vec<u8>, bytes: &[u8]) {
        let length = u32::try_from(bytes.len()).expect("attribute fields are far below 4 GiB");
        encoded.extend_from_slice(&length.to_be_bytes());
        encoded.extend_from_slice(bytes);
    }
    let mut encoded = Vec::new();
    // BTreeMap iterates in byte order of the names, which is the order SQS sorts them in.
    for (name, value) in attributes {
        field(&mut encoded, name.as_bytes());
        field(&mut encoded, value.data_type.as_bytes());
        match &value.binary_value {
            Some(binary) => {
                encoded.push(2);
                field(&mut encoded, binary);
            }
            None => {
                encoded.push(1);
                field(
                    &mut encoded,
                    value.string_value.as_deref().unwrap_or_default().as_bytes(),
                );
            }
        }
    }
    encoded
}

/// Lower-case hex SHA-256 of `bytes`: the deduplication id of a message of a FIFO queue with
/// content-based deduplication.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        write!(text, "{byte:02x}").expect("writing to a String cannot fail");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(data_type: &str, value: &str) -> MessageAttributeValue {
        MessageAttributeValue {
            data_type: data_type.into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    // Published values (npm `aws-md5-of-message-attributes`, checked against SQS).
    #[test]
    fn attribute_digests_match_sqs() {
        let one = BTreeMap::from([("attribName1".to_owned(), string("String", "attribValue 1"))]);
        assert_eq!(
            md5_of_message_attributes(&one).unwrap(),
            "19e27d4e946b072f3f58da80d94fd778"
        );
        let custom = BTreeMap::from([(
            "customNumberTypeAttrib".to_owned(),
            string("Number.float", "4563442423554324324264524243.32543234"),
        )]);
        assert_eq!(
            md5_of_message_attributes(&custom).unwrap(),
            "9fe1b90bbd9965bdf77bac517c7d2495"
        );
        let binary = MessageAttributeValue {
            data_type: "Binary".into(),
            string_value: None,
            binary_value: Some(b"Hello binary world!".to_vec()),
        };
        let binary_only = BTreeMap::from([("binaryAttribute".to_owned(), binary.clone())]);
        assert_eq!(
            md5_of_message_attributes(&binary_only).unwrap(),
            "31a92b15d92f8db860eda32aceb656c3"
        );
        let mut all = one;
        all.extend(custom);
        all.insert("binaryAttribute".into(), binary);
        assert_eq!(
            md5_of_message_attributes(&all).unwrap(),
            "c932db14a896c663f83c260297d594ff"
        );
        assert_eq!(md5_of_message_attributes(&BTreeMap::new()), None);
    }

    #[test]
    fn body_digests() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            sha256_hex(b"hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
