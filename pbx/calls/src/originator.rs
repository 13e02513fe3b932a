//! Who places a call. The call shows it to the devices it rings (the From of the callee leg)
//! and writes it in the CDR; the shell decided before that it may call at all (digest for an
//! extension, source network or registration for a trunk).

/// The party behind the caller's leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Originator {
    /// An extension that authenticated from one of its devices (or a browser).
    Extension {
        number: String,
        /// The display name of its From, if any.
        name: Option<String>,
    },
    /// A caller from outside, over the trunk `trunk`, with the number and name the trunk
    /// presented.
    Trunk {
        trunk: String,
        number: String,
        name: Option<String>,
    },
}

impl Originator {
    /// The caller's number, as the devices see it and the CDR keeps it.
    pub fn number(&self) -> &str {
        match self {
            Originator::Extension { number, .. } | Originator::Trunk { number, .. } => number,
        }
    }

    /// The display name shown to the devices rung.
    pub fn name(&self) -> Option<&str> {
        match self {
            Originator::Extension { name, .. } | Originator::Trunk { name, .. } => name.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Originator;

    #[test]
    fn number_and_name_of_each_kind() {
        let ext = Originator::Extension {
            number: "1001".into(),
            name: Some("Alice".into()),
        };
        assert_eq!((ext.number(), ext.name()), ("1001", Some("Alice")));
        let trunk = Originator::Trunk {
            trunk: "carrier".into(),
            number: "+4930123".into(),
            name: None,
        };
        assert_eq!((trunk.number(), trunk.name()), ("+4930123", None));
    }
}
