//! How the state names an input file.

/// How the state names an input file: its path as text when it is UTF-8 (as every state has
/// always stored it), else its exact bytes, so two names that differ only in bytes that are
/// not UTF-8 stay two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKey {
    Text(String),
    Bytes(Vec<u8>),
}

impl SourceKey {
    /// The key of an input.
    pub fn of(source: &crate::input::InputSource) -> SourceKey {
        use std::os::unix::ffi::OsStrExt;
        let bytes = match source {
            crate::input::InputSource::File(path) => path.as_os_str().as_bytes().to_vec(),
            crate::input::InputSource::ZipMember { zip, member } => {
                let mut bytes = zip.as_os_str().as_bytes().to_vec();
                bytes.push(b'!');
                bytes.extend_from_slice(member.as_bytes());
                bytes
            }
            crate::input::InputSource::Stdin => b"<stdin>".to_vec(),
        };
        match String::from_utf8(bytes) {
            Ok(text) => SourceKey::Text(text),
            Err(not_text) => SourceKey::Bytes(not_text.into_bytes()),
        }
    }

    pub(super) fn from_sql_value(value: rusqlite::types::Value) -> SourceKey {
        match value {
            rusqlite::types::Value::Blob(bytes) => SourceKey::Bytes(bytes),
            rusqlite::types::Value::Text(text) => SourceKey::Text(text),
            other => SourceKey::Text(format!("{other:?}")),
        }
    }

    /// For people: the text, or the bytes with what is not UTF-8 replaced.
    pub fn display(&self) -> String {
        match self {
            SourceKey::Text(text) => text.clone(),
            SourceKey::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

impl From<&str> for SourceKey {
    fn from(text: &str) -> SourceKey {
        SourceKey::Text(text.to_owned())
    }
}

impl rusqlite::ToSql for SourceKey {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            SourceKey::Text(text) => text.as_str().into(),
            SourceKey::Bytes(bytes) => bytes.as_slice().into(),
        })
    }
}
