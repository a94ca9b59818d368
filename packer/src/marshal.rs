//! Byte-code that does not depend on the compiling process's history.
//!
//! Before CPython 3.12 (whose interned strings are immortal), `marshal` marks an object it
//! writes as one later entries may refer back to (`FLAG_REF`, the type byte's high bit) when
//! the object's reference count is above one — which counts references held anywhere in the
//! process, such as by what an earlier file left alive in the same compile worker. So the
//! same source compiles to `.pyc` files that differ in those bits, and in the numbers of the
//! back-references (`TYPE_REF`) that follow, depending on which files a worker compiled
//! before. [`canonical_refs`] rewrites a marshalled code object in place so that exactly the
//! objects some back-reference names carry the flag, numbered in order: what `marshal.loads`
//! builds from it is unchanged, and its bytes depend on the code alone. (Debian and Fedora
//! post-process their byte-code the same way.)
//!
//! A string's interned mark depends on the process too: a one-character string is a shared
//! object before 3.12, interned once anything in the worker interned it (`"{"` is written
//! interned by a worker that met it as a name before). So every string is written as not
//! interned: what the mark would do at load, the code object does itself, for its names and
//! for every constant made of name characters alone (`intern_strings` and
//! `intern_string_constants` in CPython 3.6-3.13), and the rest only ever compares by value.

/// Why a marshalled object could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MarshalError {
    #[error("ends early at byte {0}")]
    Truncated(usize),
    #[error("unknown type {kind:#04x} at byte {at}")]
    UnknownType { kind: u8, at: usize },
    #[error("a back-reference at byte {at} names object {index}, of {known} marked so far")]
    BadReference { at: usize, index: u32, known: usize },
    #[error("nested deeper than {MAX_DEPTH} objects")]
    TooDeep,
    #[error("{0} bytes follow the object")]
    Trailing(usize),
}

const FLAG_REF: u8 = 0x80;
/// Deeper than `marshal` itself reads (2,000).
const MAX_DEPTH: usize = 2_100;

/// Rewrites the marshalled object `data` (a `.pyc` without its header) of CPython `version`
/// so that `FLAG_REF` marks exactly the objects a back-reference names, and no string is
/// marked interned.
pub fn canonical_refs(data: &mut [u8], version: (u32, u32)) -> Result<(), MarshalError> {
    let mut scan = Scan {
        data,
        at: 0,
        code_layout: CodeLayout::of(version),
        marked: Vec::new(),
        references: Vec::new(),
    };
    scan.object()?;
    if scan.at != scan.data.len() {
        return Err(MarshalError::Trailing(scan.data.len() - scan.at));
    }
    let Scan {
        marked, references, ..
    } = scan;
    let mut named = vec![false; marked.len()];
    for &(at, index) in &references {
        let slot = named
            .get_mut(index as usize)
            .ok_or(MarshalError::BadReference {
                at,
                index,
                known: marked.len(),
            })?;
        *slot = true;
    }
    // The new number of each marked object that stays marked.
    let mut renumbered = Vec::with_capacity(marked.len());
    let mut next = 0u32;
    for (&at, &keep) in marked.iter().zip(&named) {
        renumbered.push(next);
        match keep {
            true => next += 1,
            false => data[at] &= !FLAG_REF,
        }
    }
    for (at, index) in references {
        data[at + 1..at + 5].copy_from_slice(&renumbered[index as usize].to_le_bytes());
    }
    Ok(())
}

/// How a code object is laid out: its 32-bit fields before the objects, the objects, then
/// `co_firstlineno` and the objects after it.
#[derive(Debug, Clone, Copy)]
struct CodeLayout {
    leading_ints: usize,
    objects: usize,
    trailing_objects: usize,
}

impl CodeLayout {
    fn of(version: (u32, u32)) -> Self {
        match version {
            // argcount, kwonlyargcount, nlocals, stacksize, flags; code, consts, names,
            // varnames, freevars, cellvars, filename, name; firstlineno; lnotab.
            (3, minor) if minor < 8 => CodeLayout {
                leading_ints: 5,
                objects: 8,
                trailing_objects: 1,
            },
            // posonlyargcount added (3.8); lnotab became linetable (3.10).
            (3, minor) if minor < 11 => CodeLayout {
                leading_ints: 6,
                objects: 8,
                trailing_objects: 1,
            },
            // argcount, posonlyargcount, kwonlyargcount, stacksize, flags; code, consts,
            // names, localsplusnames, localspluskinds, filename, name, qualname; firstlineno;
            // linetable, exceptiontable (3.11 to 3.13).
            _ => CodeLayout {
                leading_ints: 5,
                objects: 8,
                trailing_objects: 2,
            },
        }
    }
}

struct Scan<'a> {
    data: &'a mut [u8],
    at: usize,
    code_layout: CodeLayout,
    /// Where each object marked `FLAG_REF` starts, in the order `marshal.loads` numbers them.
    marked: Vec<usize>,
    /// Each back-reference: where it starts and the number it names.
    references: Vec<(usize, u32)>,
}

impl Scan<'_> {
    fn skip(&mut self, bytes: usize) -> Result<(), MarshalError> {
        let end = self
            .at
            .checked_add(bytes)
            .filter(|end| *end <= self.data.len())
            .ok_or(MarshalError::Truncated(self.data.len()))?;
        self.at = end;
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, MarshalError> {
        let value = *self
            .data
            .get(self.at)
            .ok_or(MarshalError::Truncated(self.at))?;
        self.at += 1;
        Ok(value)
    }

    fn int(&mut self) -> Result<i32, MarshalError> {
        let bytes = self
            .data
            .get(self.at..self.at + 4)
            .ok_or(MarshalError::Truncated(self.at))?;
        let value = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        self.at += 4;
        Ok(value)
    }

    /// A 32-bit length or count, which `marshal` never writes negative.
    fn count(&mut self) -> Result<usize, MarshalError> {
        let at = self.at;
        usize::try_from(self.int()?).map_err(|_| MarshalError::Truncated(at))
    }

    /// Reads one object, its contents included, without recursing: `pending` holds what is
    /// left to read of each object being read.
    fn object(&mut self) -> Result<(), MarshalError> {
        let mut pending = vec![Pending::Objects(1)];
        while let Some(top) = pending.last_mut() {
            match top {
                Pending::Objects(0) => {
                    pending.pop();
                }
                Pending::Objects(left) => {
                    *left -= 1;
                    if let Some(inner) = self.header()? {
                        if pending.len() >= MAX_DEPTH {
                            return Err(MarshalError::TooDeep);
                        }
                        pending.extend(inner);
                    }
                }
                Pending::Dict => match self.data.get(self.at) {
                    // Pairs until a NULL key.
                    Some(b'0') => {
                        self.at += 1;
                        pending.pop();
                    }
                    _ => pending.push(Pending::Objects(2)),
                },
                Pending::CodeTail(objects) => {
                    let objects = *objects;
                    pending.pop();
                    self.skip(4)?;
                    pending.push(Pending::Objects(objects));
                }
            }
        }
        Ok(())
    }

    /// Reads an object's type and what it holds besides other objects; returns what is to
    /// be read of those (innermost last), if any.
    fn header(&mut self) -> Result<Option<Vec<Pending>>, MarshalError> {
        let start = self.at;
        let kind = self.byte()?;
        if kind & FLAG_REF != 0 {
            self.marked.push(start);
        }
        let inner = match kind & !FLAG_REF {
            // NULL, None, False, True, StopIteration, Ellipsis.
            b'0' | b'N' | b'F' | b'T' | b'S' | b'.' => None,
            b'i' => self.skip(4).map(|()| None)?,
            b'I' | b'g' => self.skip(8).map(|()| None)?,
            b'y' => self.skip(16).map(|()| None)?,
            b'f' => {
                let length = self.byte()?;
                self.skip(length.into())?;
                None
            }
            b'x' => {
                for _ in 0..2 {
                    let length = self.byte()?;
                    self.skip(length.into())?;
                }
                None
            }
            b'l' => {
                let at = self.at;
                let digits = self.int()?.unsigned_abs() as usize;
                self.skip(digits.checked_mul(2).ok_or(MarshalError::Truncated(at))?)?;
                None
            }
            // bytes, interned, unicode, ascii, interned ascii.
            b's' | b't' | b'u' | b'a' | b'A' => {
                self.data[start] = kind & FLAG_REF | not_interned(kind & !FLAG_REF);
                let length = self.count()?;
                self.skip(length)?;
                None
            }
            // Short ascii, short interned ascii.
            b'z' | b'Z' => {
                self.data[start] = kind & FLAG_REF | not_interned(kind & !FLAG_REF);
                let length = self.byte()?;
                self.skip(length.into())?;
                None
            }
            b')' => Some(vec![Pending::Objects(self.byte()?.into())]),
            // Tuple, list, set, frozenset.
            b'(' | b'[' | b'<' | b'>' => Some(vec![Pending::Objects(self.count()?)]),
            b'{' => Some(vec![Pending::Dict]),
            b'c' => {
                let layout = self.code_layout;
                self.skip(4 * layout.leading_ints)?;
                Some(vec![
                    Pending::CodeTail(layout.trailing_objects),
                    Pending::Objects(layout.objects),
                ])
            }
            b'r' => {
                let index = self.int()? as u32;
                self.references.push((start, index));
                None
            }
            _ => return Err(MarshalError::UnknownType { kind, at: start }),
        };
        Ok(inner)
    }
}

/// A string type's form that is not interned (the type itself for any other).
fn not_interned(kind: u8) -> u8 {
    match kind {
        b't' => b'u',
        b'A' => b'a',
        b'Z' => b'z',
        other => other,
    }
}

/// What is left to read of an object being read.
enum Pending {
    /// This many objects.
    Objects(usize),
    /// A dict's pairs, up to its NULL key.
    Dict,
    /// A code object's `co_firstlineno`, then this many objects.
    CodeTail(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn unused_marks_go_and_references_are_renumbered() {
        // A tuple of: a marked "ab" (named later), a marked "cd" (never named), a marked
        // "ef" (named), and back-references to objects 2 and 0.
        let mut data = vec![b')', 5];
        data.extend([b'z' | FLAG_REF, 2, b'a', b'b']);
        data.extend([b'z' | FLAG_REF, 2, b'c', b'd']);
        data.extend([b'z' | FLAG_REF, 2, b'e', b'f']);
        data.extend([b'r', 2, 0, 0, 0]);
        data.extend([b'r', 0, 0, 0, 0]);
        canonical_refs(&mut data, (3, 8)).expect("canonical");
        let mut expected = vec![b')', 5];
        expected.extend([b'z' | FLAG_REF, 2, b'a', b'b']);
        expected.extend([b'z', 2, b'c', b'd']);
        expected.extend([b'z' | FLAG_REF, 2, b'e', b'f']);
        expected.extend([b'r', 1, 0, 0, 0]);
        expected.extend([b'r', 0, 0, 0, 0]);
        assert_eq!(data, expected);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let cases: Vec<(Vec<u8>, MarshalError)> = vec![
            (vec![], MarshalError::Truncated(0)),
            (vec![b'z', 5, b'a'], MarshalError::Truncated(3)),
            (
                vec![b'(', 0xff, 0xff, 0xff, 0xff],
                MarshalError::Truncated(1),
            ),
            (
                vec![b'r', 3, 0, 0, 0],
                MarshalError::BadReference {
                    at: 0,
                    index: 3,
                    known: 0,
                },
            ),
            (vec![b'Q'], MarshalError::UnknownType { kind: b'Q', at: 0 }),
            (vec![b'N', b'N'], MarshalError::Trailing(1)),
            (vec![b'{', b'N'], MarshalError::Truncated(2)),
        ];
        for (mut data, expected) in cases {
            assert_eq!(canonical_refs(&mut data, (3, 8)), Err(expected));
        }
        let mut deep = [b')', 1].repeat(3_000);
        deep.push(b'N');
        assert_eq!(
            canonical_refs(&mut deep, (3, 8)),
            Err(MarshalError::TooDeep)
        );
    }

    /// Each CPython compiles a module twice in one process: alone, and while the first
    /// code object is still alive (so its shared strings have a second reference and are
    /// marked). Made canonical, the two are the same bytes, which load to the same code.
    #[test]
    fn the_same_source_gives_the_same_bytes_whatever_the_process_holds() {
        const COMPILE: &str = r#"
import marshal, sys
source = open(sys.argv[1]).read()
one = marshal.dumps(compile(source, "m.py", "exec"))
keep = compile(source, "m.py", "exec")
two = marshal.dumps(compile(source, "m.py", "exec"))
# A one-character string is one shared object: interned now, so written interned.
sys.intern(chr(123))
three = marshal.dumps(compile(source, "m.py", "exec"))
print(one.hex())
print(two.hex())
print(three.hex())
"#;
        const LOAD: &str = r#"
import marshal, sys
original, canonical = (bytes.fromhex(line) for line in sys.stdin.read().split())
assert marshal.loads(original) == marshal.loads(canonical)
print("same")
"#;
        let source = "import os\n\
            def f(x, *, y=1):\n    z = {'alpha': x, 'beta': y}\n    return [k for k in z if k in ('alpha', 'gamma')]\n\
            class C:\n    def m(self):\n        return f(1) + [os.sep, 1.5, 2j, 10**40, -10**40, b'bytes', None, ..., '{', 'caf\u{e9}']\n\
            async def g(x):\n    async with x as y:\n        return {y, 'set'}\n\
            try:\n    pass\nexcept Exception as error:\n    raise\n";
        let work = tempfile::tempdir().expect("tempdir");
        let module = work.path().join("m.py");
        std::fs::write(&module, source).expect("write");
        let (mut differed, mut interned_differed) = (0, 0);
        let pythons = installed_pythons();
        assert!(!pythons.is_empty(), "no CPython 3.6-3.13 under ~/.pyenv");
        for (version, python) in pythons {
            let output = Command::new(&python)
                .args(["-I", "-c", COMPILE])
                .arg(&module)
                .output()
                .expect("python");
            assert!(output.status.success(), "{version:?}");
            let text = String::from_utf8(output.stdout).expect("hex");
            let forms: Vec<Vec<u8>> = text.split_whitespace().map(unhex).collect();
            let (mut one, mut two, mut three) =
                (forms[0].clone(), forms[1].clone(), forms[2].clone());
            differed += usize::from(one != two);
            interned_differed += usize::from(one != three);
            canonical_refs(&mut one, version).expect("canonical");
            canonical_refs(&mut two, version).expect("canonical");
            canonical_refs(&mut three, version).expect("canonical");
            assert_eq!(one, two, "CPython {version:?}");
            assert_eq!(one, three, "CPython {version:?}");
            let mut child = Command::new(&python)
                .args(["-I", "-c", LOAD])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python");
            let mut stdin = child.stdin.take().expect("stdin");
            writeln!(stdin, "{} {}", hex(&forms[0]), hex(&one)).expect("write");
            drop(stdin);
            let output = child.wait_with_output().expect("python");
            assert_eq!(output.stdout, b"same\n", "CPython {version:?}");
        }
        // Before 3.12 the marks follow reference counts, so the raw forms differed there,
        // and so did the mark of the interned one-character string.
        assert!(differed > 0, "no interpreter showed the difference");
        assert!(
            interned_differed > 0,
            "no interpreter wrote \"{{\" interned"
        );
    }

    /// Each CPython 3.6-3.13 under pyenv, by version.
    fn installed_pythons() -> Vec<((u32, u32), std::path::PathBuf)> {
        let mut found = Vec::new();
        for minor in 6..=13 {
            let prefix = format!("3.{minor}.");
            let python = std::fs::read_dir("/root/.pyenv/versions")
                .into_iter()
                .flatten()
                .flatten()
                .find(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
                .map(|entry| entry.path().join("bin/python"));
            found.extend(python.map(|python| ((3, minor), python)));
        }
        found
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}
