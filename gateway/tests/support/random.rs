//! A seeded random generator of protobuf messages, driven by the proto descriptors, for the
//! fuzz tests: any message type, every field kind, oneofs with at most one member, maps, nested
//! messages to a bounded depth, and (when asked) enum numbers and doubles no Titus client would
//! send.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Generator settings.
pub struct Random {
    pub rng: StdRng,
    /// Allow enum numbers outside the enum and non-finite doubles.
    pub hostile: bool,
    /// How deep messages nest.
    pub max_depth: usize,
}

const WORDS: &[&str] = &[
    "",
    "a",
    "titus",
    "sg-1",
    "sg-abc",
    "1",
    "latest",
    "sha256:0123456789abcdef0123456789abcdef",
    "a@b",
    "team@example.com",
    "DEFAULT",
    "myapp",
    "ENV_NAME",
    "lower",
    "/mnt",
    "x y",
    "é",
    "titus.createdBy",
    "titusParameter.agent.x",
    "uniqueHost",
    "zoneBalance",
    "true",
    "America/Los_Angeles",
    "alwaysHealthy",
];

impl Random {
    pub fn new(seed: u64, hostile: bool) -> Random {
        Random {
            rng: StdRng::seed_from_u64(seed),
            hostile,
            max_depth: 5,
        }
    }

    /// A random message of type `descriptor`.
    pub fn message(&mut self, descriptor: &MessageDescriptor) -> DynamicMessage {
        self.message_at(descriptor, 0)
    }

    fn message_at(&mut self, descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        if depth > self.max_depth {
            return message;
        }
        for oneof in descriptor.oneofs() {
            let fields: Vec<FieldDescriptor> = oneof.fields().collect();
            if self.rng.random_bool(0.7) && !fields.is_empty() {
                let field = &fields[self.rng.random_range(0..fields.len())];
                let value = self.single(field, depth);
                message.set_field(field, value);
            }
        }
        for field in descriptor.fields() {
            if field.containing_oneof().is_some() || !self.rng.random_bool(0.6) {
                continue;
            }
            let value = if field.is_map() {
                self.map(&field, depth)
            } else if field.is_list() {
                let n = self.rng.random_range(0..4);
                Value::List((0..n).map(|_| self.single(&field, depth)).collect())
            } else {
                self.single(&field, depth)
            };
            message.set_field(&field, value);
        }
        message
    }

    fn map(&mut self, field: &FieldDescriptor, depth: usize) -> Value {
        let Kind::Message(entry) = field.kind() else {
            return Value::Map(Default::default());
        };
        let value_field = entry.map_entry_value_field();
        let n = self.rng.random_range(0..4);
        let map = (0..n)
            .map(|_| {
                let key = MapKey::String(self.string());
                (key, self.single(&value_field, depth))
            })
            .collect();
        Value::Map(map)
    }

    pub fn string(&mut self) -> String {
        if self.rng.random_bool(0.8) {
            WORDS[self.rng.random_range(0..WORDS.len())].to_string()
        } else {
            let n = self.rng.random_range(0..12);
            (0..n)
                .map(|_| char::from_u32(self.rng.random_range(0x20..0x2FF)).unwrap_or('?'))
                .collect()
        }
    }

    fn single(&mut self, field: &FieldDescriptor, depth: usize) -> Value {
        match field.kind() {
            Kind::Double => Value::F64(self.double()),
            Kind::Float => Value::F32(self.double() as f32),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(self.small_int() as i32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(self.small_int()),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(self.small_int().unsigned_abs() as u32),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(self.small_int().unsigned_abs()),
            Kind::Bool => Value::Bool(self.rng.random_bool(0.5)),
            Kind::String => Value::String(self.string()),
            Kind::Bytes => {
                let n = self.rng.random_range(0..16);
                Value::Bytes(
                    (0..n)
                        .map(|_| self.rng.random::<u8>())
                        .collect::<Vec<u8>>()
                        .into(),
                )
            }
            Kind::Enum(e) => {
                let values: Vec<i32> = e.values().map(|v| v.number()).collect();
                if self.hostile && self.rng.random_bool(0.05) {
                    Value::EnumNumber(self.rng.random_range(-5..100))
                } else {
                    Value::EnumNumber(values[self.rng.random_range(0..values.len())])
                }
            }
            Kind::Message(m) => {
                // A Struct value must say what it is to survive a JSON round trip.
                if m.full_name() == "google.protobuf.Value" && !self.hostile {
                    return Value::Message(self.struct_value(&m, depth));
                }
                Value::Message(self.message_at(&m, depth + 1))
            }
        }
    }

    fn struct_value(&mut self, descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        let kinds: Vec<FieldDescriptor> = descriptor.fields().collect();
        let leaf_only = depth + 1 > self.max_depth;
        let choices: Vec<&FieldDescriptor> = kinds
            .iter()
            .filter(|f| !leaf_only || !matches!(f.kind(), Kind::Message(_)))
            .collect();
        let field = choices[self.rng.random_range(0..choices.len())];
        let value = self.single(field, depth + 1);
        message.set_field(field, value);
        message
    }

    fn small_int(&mut self) -> i64 {
        match self.rng.random_range(0..10) {
            0 => 0,
            1 => i64::from(u32::MAX),
            2 => -1,
            3 => i64::from(self.rng.random::<i32>()),
            _ => self.rng.random_range(0..2_000),
        }
    }

    fn double(&mut self) -> f64 {
        match self.rng.random_range(0..12) {
            0 if self.hostile => f64::NAN,
            1 if self.hostile => f64::INFINITY,
            2 => -1.5,
            3 => 1e300,
            _ => f64::from(self.rng.random_range(0..20_000)) / 100.0,
        }
    }
}
