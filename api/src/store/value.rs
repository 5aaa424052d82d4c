//! The values the store binds to statements and reads out of rows, whichever the
//! database: [`Value`], [`Row`], and `params!`.

use super::error::StoreError;

/// A value bound to a statement or read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (times are ms since the epoch; booleans 0 or 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A Rust value the store binds to a statement.
pub trait ToValue {
    /// As a [`Value`].
    fn to_value(&self) -> Value;
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for u64 {
    /// Stored as an `i64` (values past `i64::MAX` wrap, as SQLite would refuse them).
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_value!(i64, i32, i16, u32, u16, u8);

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl<T: ToValue> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.to_value()
    }
}

macro_rules! from_value_for {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                v.to_value()
            }
        }
    )*};
}
from_value_for!(i64, i32, i16, u32, u16, u8, u64, bool, f64, &str, String, Vec<u8>);

/// The values of a statement's parameters, in order: `params![a, b, c]`.
macro_rules! params {
    () => {
        &[] as &[$crate::store::value::Value]
    };
    ($($x:expr),+ $(,)?) => {
        &[$($crate::store::value::ToValue::to_value(&$x)),+] as &[$crate::store::value::Value]
    };
}
pub(crate) use params;

/// A Rust value the store reads out of a row.
pub trait FromValue: Sized {
    /// From a column's value; `None` when the value is of another kind.
    fn from_value(v: &Value) -> Option<Self>;
    /// What was expected, for the error.
    const WANTED: &'static str;
}

impl FromValue for Value {
    fn from_value(v: &Value) -> Option<Self> {
        Some(v.clone())
    }
    const WANTED: &'static str = "any value";
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
    const WANTED: &'static str = "an integer";
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Option<Self> {
                match v {
                    Value::Int(n) => <$t>::try_from(*n).ok(),
                    _ => None,
                }
            }
            const WANTED: &'static str = concat!("an integer that fits a ", stringify!($t));
        }
    )*};
}
int_from_value!(i32, u32, u16, u64);

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(n) => Some(*n != 0),
            _ => None,
        }
    }
    const WANTED: &'static str = "a boolean (an integer)";
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(n) => Some(*n as f64),
            _ => None,
        }
    }
    const WANTED: &'static str = "a number";
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    const WANTED: &'static str = "text";
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
    const WANTED: &'static str = "bytes";
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    const WANTED: &'static str = T::WANTED;
}

/// One row of a query's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as a `T`; [`StoreError::Column`] when it is missing or of another kind.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        let v = self.0.get(i).ok_or_else(|| StoreError::Column(format!("no column {i}")))?;
        T::from_value(v).ok_or_else(|| StoreError::Column(format!("column {i} is {v:?}, not {}", T::WANTED)))
    }
}
