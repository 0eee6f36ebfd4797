//! Which proxy a script's request goes through, as curl reads the environment:
//! `HTTP_PROXY` for `http://` URLs, `HTTPS_PROXY` for `https://`, `ALL_PROXY` for
//! either when the specific one is unset, each also in lower case (lower case
//! first, as curl), and `NO_PROXY` exceptions. Loopback is not exempt unless
//! `NO_PROXY` names it. (ureq's own reading takes one proxy for every scheme.)

/// The proxy settings, read once from the environment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Proxies {
    http: Option<String>,
    https: Option<String>,
    no_proxy: Vec<String>,
}

impl Proxies {
    /// From the process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From `var`, which gives a variable's value.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .filter_map(|name| var(name))
                .map(|value| value.trim().to_owned())
                .find(|value| !value.is_empty())
        };
        let all = first(&["all_proxy", "ALL_PROXY"]);
        Proxies {
            http: first(&["http_proxy", "HTTP_PROXY"]).or_else(|| all.clone()),
            https: first(&["https_proxy", "HTTPS_PROXY"]).or(all),
            no_proxy: first(&["no_proxy", "NO_PROXY"])
                .map(|list| {
                    list.split(',')
                        .map(|entry| {
                            entry
                                .trim()
                                .trim_start_matches('.')
                                .trim_start_matches('[')
                                .trim_end_matches(']')
                                .to_ascii_lowercase()
                        })
                        .filter(|entry| !entry.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The proxy URL for a request to `host` over `scheme` (`http` or `https`).
    pub fn for_target(&self, scheme: &str, host: &str) -> Option<&str> {
        let proxy = match scheme {
            "https" => self.https.as_deref(),
            _ => self.http.as_deref(),
        }?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let exempt = self.no_proxy.iter().any(|entry| {
            entry == "*"
                || host == *entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        });
        (!exempt).then_some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::Proxies;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        Proxies::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn each_scheme_has_its_variable_and_all_proxy_fills_in() {
        let p = proxies(&[
            ("HTTP_PROXY", "http://plain:3128"),
            ("ALL_PROXY", "http://all:3128"),
        ]);
        assert_eq!(
            p.for_target("http", "example.com"),
            Some("http://plain:3128")
        );
        assert_eq!(
            p.for_target("https", "example.com"),
            Some("http://all:3128")
        );

        let p = proxies(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:1"),
        ]);
        assert_eq!(
            p.for_target("https", "x"),
            Some("http://lower:1"),
            "lower case first"
        );
        assert_eq!(p.for_target("http", "x"), None);
        assert_eq!(proxies(&[]).for_target("https", "x"), None);
    }

    #[test]
    fn no_proxy_names_host_suffixes_or_everything() {
        let p = proxies(&[
            ("HTTPS_PROXY", "http://proxy:1"),
            ("NO_PROXY", "internal.example, .corp, 127.0.0.1, [::1]"),
        ]);
        for host in [
            "internal.example",
            "api.internal.example",
            "db.corp",
            "127.0.0.1",
            "[::1]",
        ] {
            assert_eq!(p.for_target("https", host), None, "{host}");
        }
        for host in [
            "example",
            "notinternal.example",
            "corp.com",
            "localhost",
            "::2",
        ] {
            assert_eq!(
                p.for_target("https", host),
                Some("http://proxy:1"),
                "{host}"
            );
        }
        let p = proxies(&[("HTTPS_PROXY", "http://proxy:1"), ("no_proxy", "*")]);
        assert_eq!(p.for_target("https", "anything"), None);
    }
}
