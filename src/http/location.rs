//! Where a redirect's `Location` points: a reference resolved against the URL the
//! response came from (RFC 3986, section 5.2). Hand-written: `http::Uri` (linked
//! already) does not resolve references, and the `url` crate brings IDNA tables for
//! a dozen lines of it.

/// A URL or relative reference split as RFC 3986's appendix B does, fragment left
/// out (it is never sent).
struct Reference<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split(text: &str) -> Reference<'_> {
    let text = text.split_once('#').map_or(text, |(before, _)| before);
    let (text, query) = match text.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (text, None),
    };
    let (scheme, rest) = match text.find(':') {
        Some(colon) if colon > 0 && !text[..colon].contains('/') => {
            (Some(&text[..colon]), &text[colon + 1..])
        }
        _ => (None, text),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    Reference {
        scheme,
        authority,
        path,
        query,
    }
}

/// `reference` (a `Location` header) resolved against `base` (an absolute URL).
pub fn resolve(base: &str, reference: &str) -> String {
    let base = split(base);
    let r = split(reference.trim());
    let (scheme, authority, path, query) = if r.scheme.is_some() {
        (r.scheme, r.authority, remove_dot_segments(r.path), r.query)
    } else if r.authority.is_some() {
        (
            base.scheme,
            r.authority,
            remove_dot_segments(r.path),
            r.query,
        )
    } else if r.path.is_empty() {
        (
            base.scheme,
            base.authority,
            base.path.to_owned(),
            r.query.or(base.query),
        )
    } else if r.path.starts_with('/') {
        (
            base.scheme,
            base.authority,
            remove_dot_segments(r.path),
            r.query,
        )
    } else {
        let merged = match base.path.rfind('/') {
            Some(slash) => format!("{}{}", &base.path[..=slash], r.path),
            None if base.authority.is_some() => format!("/{}", r.path),
            None => r.path.to_owned(),
        };
        (
            base.scheme,
            base.authority,
            remove_dot_segments(&merged),
            r.query,
        )
    };
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push(':');
    }
    if let Some(authority) = authority {
        out.push_str("//");
        out.push_str(authority);
    }
    out.push_str(&path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// RFC 3986, 5.2.4: `.` and `..` segments taken out of `path`.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let mut input = path;
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            output.pop();
        } else if input == "/.." {
            input = "/";
            output.pop();
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push(&input[..end]);
            input = &input[end..];
        }
    }
    output.concat()
}

#[cfg(test)]
mod tests {
    use super::resolve;

    /// RFC 3986, 5.4.1 and 5.4.2: every normal and abnormal example.
    #[test]
    fn references_resolve_as_rfc_3986_says() {
        let base = "http://a/b/c/d;p?q";
        let cases = [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("g;x?y#s", "http://a/b/c/g;x?y"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("g#s/./x", "http://a/b/c/g"),
            ("http:g", "http:g"),
        ];
        for (reference, expected) in cases {
            assert_eq!(resolve(base, reference), expected, "{reference:?}");
        }
        assert_eq!(
            resolve("https://h:8443", "next?a=1"),
            "https://h:8443/next?a=1"
        );
        assert_eq!(
            resolve("https://h/x", " https://other/y "),
            "https://other/y"
        );
    }
}
