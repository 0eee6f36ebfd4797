//! XML answers as binding values (SPEC 7.4): the query protocol's results (SNS,
//! STS, SES), S3's, and the error bodies of every XML service.
//!
//! Without a service model, the shape comes from the document alone: elements are
//! maps, a name repeated among siblings is a list, an element whose children are
//! all `<member>`s is the list of them (even one), and text stays text — XML
//! carries no types, so STS's `Account` stays a string. Namespaces are ignored
//! (elements go by their local names), and so are attributes.

use std::collections::HashMap;

use roxmltree::{Document, Node};

use crate::stdlib::binding::Value;

/// How deep [`to_value`] builds values. AWS answers nest a few levels; a document
/// nested deeper (from a custom endpoint) must not overflow the stack, here or
/// where the scripts' bindings convert the value.
const MAX_DEPTH: usize = 64;

/// `node` as a value:
/// - an element with element children: a map of child name → value, in document
///   order, where a name repeated among siblings is the list of their values; when
///   the children are all `<member>`s, the list of their values instead;
/// - an element without element children: its text, entities decoded (`""` when
///   empty, so an empty list, `<Topics/>`, is `""` too).
///
/// Elements nested more than 64 levels below `node` come as their text.
pub fn to_value(node: Node<'_, '_>) -> Value {
    value_at(node, 0)
}

fn value_at(node: Node<'_, '_>, depth: usize) -> Value {
    let mut children = node.children().filter(Node::is_element).peekable();
    if children.peek().is_none() {
        return Value::Text(text(node));
    }
    if depth == MAX_DEPTH {
        return Value::Text(
            node.descendants()
                .filter(Node::is_text)
                .filter_map(|n| n.text())
                .collect(),
        );
    }
    if node
        .children()
        .filter(Node::is_element)
        .all(|child| child.tag_name().name() == "member")
    {
        return Value::List(children.map(|child| value_at(child, depth + 1)).collect());
    }
    // Each name once, in the order first seen, with all its siblings' values.
    let mut fields: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for child in children {
        let name = child.tag_name().name();
        let value = value_at(child, depth + 1);
        match index.get(name) {
            Some(&at) => fields[at].1.push(value),
            None => {
                index.insert(name, fields.len());
                fields.push((name, vec![value]));
            }
        }
    }
    Value::Map(
        fields
            .into_iter()
            .map(|(name, mut values)| {
                let value = if values.len() == 1 {
                    values.remove(0)
                } else {
                    Value::List(values)
                };
                (name.to_owned(), value)
            })
            .collect(),
    )
}

/// The text directly inside `node` (CDATA included, comments left out).
fn text(node: Node<'_, '_>) -> String {
    node.children()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect()
}

/// The result of the query-protocol call `action`: the value of the
/// `<{action}Result>` element under the answer's root, or an empty map when there
/// is none (SNS `DeleteTopic` answers only `ResponseMetadata`) or it holds no
/// elements. The error says where the XML is malformed.
pub fn query_result(xml: &str, action: &str) -> Result<Value, String> {
    let document = parse(xml)?;
    let name = format!("{action}Result");
    let result = document
        .root_element()
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(to_value);
    Ok(match result {
        Some(value @ (Value::Map(_) | Value::List(_))) => value,
        _ => Value::Map(Vec::new()),
    })
}

fn parse(xml: &str) -> Result<Document<'_>, String> {
    Document::parse(xml).map_err(|e| format!("the answer is not valid XML: {e}"))
}

/// A service's error, read from an XML error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The AWS error code: `NoSuchKey`, `InvalidParameter`, `AccessDenied`, ...
    pub code: String,
    /// AWS's message; `""` when the body has none.
    pub message: String,
    /// The body's `RequestId` (EC2: `RequestID`), when it has one.
    pub request_id: Option<String>,
}

/// The error an XML body describes, in any of the shapes AWS sends:
/// - the query protocol's `<ErrorResponse><Error><Type/><Code/><Message/></Error>
///   <RequestId/></ErrorResponse>`;
/// - EC2's `<Response><Errors><Error><Code/><Message/></Error></Errors>
///   <RequestID/></Response>`;
/// - S3's `<Error><Code/><Message/><RequestId/>...</Error>`.
///
/// `None` when the body is not XML or names no error code: the caller falls back
/// on the HTTP status.
pub fn error(xml: &str) -> Option<ServiceError> {
    let document = Document::parse(xml).ok()?;
    let root = document.root_element();
    let error = root
        .descendants()
        .find(|n| n.tag_name().name() == "Error" && child_text(*n, "Code").is_some())?;
    let code = child_text(error, "Code")?.trim().to_owned();
    if code.is_empty() {
        return None;
    }
    let request_id = [error, root]
        .into_iter()
        .flat_map(|n| [child_text(n, "RequestId"), child_text(n, "RequestID")])
        .flatten()
        .map(|id| id.trim().to_owned())
        .find(|id| !id.is_empty());
    Some(ServiceError {
        code,
        message: child_text(error, "Message").unwrap_or_default(),
        request_id,
    })
}

/// The text of `node`'s first child element called `name`.
fn child_text(node: Node<'_, '_>, name: &str) -> Option<String> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{map, text};

    fn root_value(xml: &str) -> Value {
        to_value(Document::parse(xml).unwrap().root_element())
    }

    // The answers below are shaped as AWS sends them (the API references'
    // examples, with their namespaces and indentation).

    const PUBLISH: &str = r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
    <PublishResult>
        <MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId>
    </PublishResult>
    <ResponseMetadata>
        <RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId>
    </ResponseMetadata>
</PublishResponse>
"#;

    const GET_CALLER_IDENTITY: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::012345678901:user/Alice</Arn>
    <UserId>AKIAI44QH8DHBEXAMPLE</UserId>
    <Account>012345678901</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
"#;

    const LIST_TOPICS_ONE: &str = r#"<ListTopicsResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ListTopicsResult>
    <Topics>
      <member>
        <TopicArn>arn:aws:sns:us-east-1:123456789012:My-Topic</TopicArn>
      </member>
    </Topics>
  </ListTopicsResult>
  <ResponseMetadata>
    <RequestId>3f1478c7-33a9-11df-9540-99d0768312d3</RequestId>
  </ResponseMetadata>
</ListTopicsResponse>
"#;

    const LIST_TOPICS_TWO: &str = r#"<ListTopicsResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ListTopicsResult>
    <Topics>
      <member>
        <TopicArn>arn:aws:sns:us-east-1:123456789012:My-Topic</TopicArn>
      </member>
      <member>
        <TopicArn>arn:aws:sns:us-east-1:123456789012:Other</TopicArn>
      </member>
    </Topics>
    <NextToken>AAAF5Z0/fLDyXCTl4vXKrDYLp3J5V4y1</NextToken>
  </ListTopicsResult>
  <ResponseMetadata>
    <RequestId>3f1478c7-33a9-11df-9540-99d0768312d3</RequestId>
  </ResponseMetadata>
</ListTopicsResponse>
"#;

    fn topic(name: &str) -> Value {
        map(&[(
            "TopicArn",
            text(&format!("arn:aws:sns:us-east-1:123456789012:{name}")),
        )])
    }

    #[test]
    fn publish_gives_its_message_id() {
        assert_eq!(
            query_result(PUBLISH, "Publish").unwrap(),
            map(&[("MessageId", text("567910cd-659e-55d4-8ccb-5aaf14679dc0"))])
        );
    }

    #[test]
    fn get_caller_identity_keeps_the_account_a_string() {
        assert_eq!(
            query_result(GET_CALLER_IDENTITY, "GetCallerIdentity").unwrap(),
            map(&[
                ("Arn", text("arn:aws:iam::012345678901:user/Alice")),
                ("UserId", text("AKIAI44QH8DHBEXAMPLE")),
                ("Account", text("012345678901")),
            ])
        );
    }

    #[test]
    fn members_are_a_list_even_one() {
        assert_eq!(
            query_result(LIST_TOPICS_ONE, "ListTopics").unwrap(),
            map(&[("Topics", Value::List(vec![topic("My-Topic")]))])
        );
        assert_eq!(
            query_result(LIST_TOPICS_TWO, "ListTopics").unwrap(),
            map(&[
                (
                    "Topics",
                    Value::List(vec![topic("My-Topic"), topic("Other")])
                ),
                ("NextToken", text("AAAF5Z0/fLDyXCTl4vXKrDYLp3J5V4y1")),
            ])
        );
    }

    #[test]
    fn members_of_text_are_a_list_of_strings() {
        let xml = "<a><L><member>x</member><member></member><member>1</member></L></a>";
        assert_eq!(
            root_value(xml),
            map(&[("L", Value::List(vec![text("x"), text(""), text("1")]))])
        );
    }

    #[test]
    fn an_empty_list_is_empty_text() {
        let xml = r#"<ListTopicsResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ListTopicsResult>
    <Topics/>
  </ListTopicsResult>
</ListTopicsResponse>"#;
        assert_eq!(
            query_result(xml, "ListTopics").unwrap(),
            map(&[("Topics", text(""))])
        );
    }

    #[test]
    fn an_answer_without_a_result_is_an_empty_map() {
        let delete_topic = r#"<DeleteTopicResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ResponseMetadata>
    <RequestId>f3aa9ac9-3c3d-11df-8235-9dab105e9c32</RequestId>
  </ResponseMetadata>
</DeleteTopicResponse>"#;
        assert_eq!(
            query_result(delete_topic, "DeleteTopic").unwrap(),
            Value::Map(vec![])
        );
        let empty = r#"<SetSMSAttributesResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <SetSMSAttributesResult>
  </SetSMSAttributesResult>
</SetSMSAttributesResponse>"#;
        assert_eq!(
            query_result(empty, "SetSMSAttributes").unwrap(),
            Value::Map(vec![])
        );
        // Another action's result is not this one's.
        assert_eq!(
            query_result(PUBLISH, "ListTopics").unwrap(),
            Value::Map(vec![])
        );
    }

    #[test]
    fn a_ses_result() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<SendEmailResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">
  <SendEmailResult>
    <MessageId>000001271b15238a-fd3ae762-2563-11df-8cd4-6d4e828a9ae8-000000</MessageId>
  </SendEmailResult>
  <ResponseMetadata>
    <RequestId>fd3ae762-2563-11df-8cd4-6d4e828a9ae8</RequestId>
  </ResponseMetadata>
</SendEmailResponse>"#;
        assert_eq!(
            query_result(xml, "SendEmail").unwrap(),
            map(&[(
                "MessageId",
                text("000001271b15238a-fd3ae762-2563-11df-8cd4-6d4e828a9ae8-000000")
            )])
        );
    }

    #[test]
    fn map_entries_repeated_are_a_list_and_one_is_a_map() {
        // SNS GetTopicAttributes: a map is `<entry>`s, which are not `<member>`s.
        let two = r#"<GetTopicAttributesResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <GetTopicAttributesResult>
    <Attributes>
      <entry>
        <key>Owner</key>
        <value>123456789012</value>
      </entry>
      <entry>
        <key>DisplayName</key>
        <value>a &amp; b</value>
      </entry>
    </Attributes>
  </GetTopicAttributesResult>
</GetTopicAttributesResponse>"#;
        let owner = map(&[("key", text("Owner")), ("value", text("123456789012"))]);
        let name = map(&[("key", text("DisplayName")), ("value", text("a & b"))]);
        assert_eq!(
            query_result(two, "GetTopicAttributes").unwrap(),
            map(&[(
                "Attributes",
                map(&[("entry", Value::List(vec![owner.clone(), name]))])
            )])
        );
        let one = "<R><GetTopicAttributesResult><Attributes><entry><key>Owner</key>\
                   <value>123456789012</value></entry></Attributes></GetTopicAttributesResult></R>";
        assert_eq!(
            query_result(one, "GetTopicAttributes").unwrap(),
            map(&[("Attributes", map(&[("entry", owner)]))])
        );
    }

    #[test]
    fn an_s3_listing() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix/>
  <KeyCount>2</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>my-image.jpg</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>my-third-image.jpg</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;1b2cf535f27731c974343645a3985328&quot;</ETag>
    <Size>64994</Size>
    <StorageClass>STANDARD_IA</StorageClass>
  </Contents>
</ListBucketResult>"#;
        let object = |key: &str, etag: &str, size: &str, class: &str| {
            map(&[
                ("Key", text(key)),
                ("LastModified", text("2009-10-12T17:50:30.000Z")),
                ("ETag", text(etag)),
                ("Size", text(size)),
                ("StorageClass", text(class)),
            ])
        };
        assert_eq!(
            root_value(xml),
            map(&[
                ("Name", text("bucket")),
                ("Prefix", text("")),
                ("KeyCount", text("2")),
                ("MaxKeys", text("1000")),
                ("IsTruncated", text("false")),
                (
                    "Contents",
                    Value::List(vec![
                        object(
                            "my-image.jpg",
                            "\"fba9dede5f27731c9771645a39863328\"",
                            "434234",
                            "STANDARD"
                        ),
                        object(
                            "my-third-image.jpg",
                            "\"1b2cf535f27731c974343645a3985328\"",
                            "64994",
                            "STANDARD_IA"
                        ),
                    ])
                ),
            ])
        );
    }

    #[test]
    fn repeated_names_keep_document_order_and_first_place() {
        let xml = "<r><a>1</a><b>2</b><a>3</a><c/><a>4</a></r>";
        assert_eq!(
            root_value(xml),
            map(&[
                ("a", Value::List(vec![text("1"), text("3"), text("4")])),
                ("b", text("2")),
                ("c", text("")),
            ])
        );
    }

    #[test]
    fn repeated_member_lists_are_a_list_of_lists() {
        let xml = "<r><L><member>1</member></L><L><member>2</member><member>3</member></L></r>";
        assert_eq!(
            root_value(xml),
            map(&[(
                "L",
                Value::List(vec![
                    Value::List(vec![text("1")]),
                    Value::List(vec![text("2"), text("3")]),
                ])
            )])
        );
    }

    #[test]
    fn members_among_other_elements_are_a_field() {
        let xml = "<r><member>1</member><Other>2</Other></r>";
        assert_eq!(
            root_value(xml),
            map(&[("member", text("1")), ("Other", text("2"))])
        );
    }

    #[test]
    fn text_is_decoded_and_kept_as_given() {
        let xml = "<r><a>&lt;b&gt; &amp; &#x263A; &#65;</a><c><![CDATA[<raw> & ]]>more</c>\
                   <d>  spaced  </d><e>one<!-- note -->two</e></r>";
        assert_eq!(
            root_value(xml),
            map(&[
                ("a", text("<b> & \u{263A} A")),
                ("c", text("<raw> & more")),
                ("d", text("  spaced  ")),
                ("e", text("onetwo")),
            ])
        );
    }

    #[test]
    fn namespaces_and_attributes_are_ignored() {
        let xml =
            r#"<s:r xmlns:s="urn:x" xmlns="urn:y" s:id="1"><s:a kind="k">1</s:a><b>2</b></s:r>"#;
        assert_eq!(root_value(xml), map(&[("a", text("1")), ("b", text("2"))]));
    }

    #[test]
    fn deep_nesting_stops_at_the_limit() {
        let depth = 10_000;
        let xml = format!("{}x{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let mut value = &root_value(&xml);
        let mut levels = 0;
        while let Value::Map(entries) = value {
            value = &entries[0].1;
            levels += 1;
        }
        assert_eq!(levels, MAX_DEPTH);
        assert_eq!(value, &text("x"));
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let err = query_result("<PublishResponse><PublishResult>", "Publish").unwrap_err();
        assert!(err.starts_with("the answer is not valid XML: "), "{err}");
        assert!(query_result("", "Publish").is_err());
        assert!(query_result("<a></b>", "Publish").is_err());
        assert!(query_result("not xml", "Publish").is_err());
    }

    #[test]
    fn an_error_response() {
        let xml = r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <Error>
    <Type>Sender</Type>
    <Code>NotFound</Code>
    <Message>Topic does not exist</Message>
  </Error>
  <RequestId>9dd01905-5012-5f99-8663-4b3ecd0dfaef</RequestId>
</ErrorResponse>"#;
        assert_eq!(
            error(xml),
            Some(ServiceError {
                code: "NotFound".into(),
                message: "Topic does not exist".into(),
                request_id: Some("9dd01905-5012-5f99-8663-4b3ecd0dfaef".into()),
            })
        );
    }

    #[test]
    fn an_error_response_without_a_message() {
        let xml = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
  </Error>
</ErrorResponse>"#;
        assert_eq!(
            error(xml),
            Some(ServiceError {
                code: "AccessDenied".into(),
                message: String::new(),
                request_id: None,
            })
        );
    }

    #[test]
    fn an_s3_error() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>missing.txt</Key><RequestId>4442587FB7D0A2F9</RequestId><HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>"#;
        assert_eq!(
            error(xml),
            Some(ServiceError {
                code: "NoSuchKey".into(),
                message: "The specified key does not exist.".into(),
                request_id: Some("4442587FB7D0A2F9".into()),
            })
        );
    }

    #[test]
    fn an_ec2_style_error() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-1a2b3c4d' does not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"#;
        assert_eq!(
            error(xml),
            Some(ServiceError {
                code: "InvalidInstanceID.NotFound".into(),
                message: "The instance ID 'i-1a2b3c4d' does not exist".into(),
                request_id: Some("ea966190-f9aa-478e-9ede-example".into()),
            })
        );
    }

    #[test]
    fn messages_are_decoded() {
        let xml = "<ErrorResponse><Error><Code>InvalidParameter</Code>\
                   <Message>Invalid parameter: Message too long &amp; &quot;bad&quot;</Message>\
                   </Error></ErrorResponse>";
        assert_eq!(
            error(xml).unwrap().message,
            "Invalid parameter: Message too long & \"bad\""
        );
    }

    #[test]
    fn no_error_in_bodies_that_name_none() {
        assert_eq!(error(PUBLISH), None);
        assert_eq!(error("<Error><Message>no code</Message></Error>"), None);
        assert_eq!(error("<Error><Code> </Code></Error>"), None);
        assert_eq!(error("<html><body>Bad Gateway</body></html>"), None);
        assert_eq!(error("<Error><Code>NoSuchKey</Code>"), None);
        assert_eq!(error(""), None);
        assert_eq!(error(r#"{"__type":"ResourceNotFoundException"}"#), None);
    }
}
