//! Where the code of an expression is: outside its string literals, and how deep inside
//! brackets — what splitting a condition at its `and`/`or` and finding the `}}` that closes
//! a `{{ … }}` both need.

/// Byte offsets of code (not inside a string literal, quotes included) with the bracket depth
/// before each: the `)` that closes the outermost pair is at depth 1.
pub fn code_positions(text: &str) -> impl Iterator<Item = (usize, usize)> {
    let bytes = text.as_bytes();
    let mut depth: usize = 0;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    (0..bytes.len()).filter_map(move |i| {
        let b = bytes[i];
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == q {
                quote = None;
            }
            return None;
        }
        let before = depth;
        match b {
            b'\'' | b'"' => {
                quote = Some(b);
                return None;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        Some((i, before))
    })
}
