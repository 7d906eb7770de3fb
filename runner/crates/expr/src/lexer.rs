//! Tokens of the expr language, split the way expr-lang/expr's Go lexer splits them.
//!
//! Keeping Go's token boundaries (and its odd corners, such as `not in` being two operator
//! tokens, or `&=` lexing as one unknown operator) is what makes our syntax errors read like
//! Argo's.

use super::gofmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Identifier,
    Number,
    String,
    Operator,
    Bracket,
    Eof,
}

impl Kind {
    fn go_name(self) -> &'static str {
        match self {
            Kind::Identifier => "Identifier",
            Kind::Number => "Number",
            Kind::String => "String",
            Kind::Operator => "Operator",
            Kind::Bracket => "Bracket",
            Kind::Eof => "EOF",
        }
    }
}

/// A token and the byte range it covers in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) value: String,
    pub(crate) from: usize,
    pub(crate) to: usize,
}

impl Token {
    pub(crate) fn is(&self, kind: Kind, value: &str) -> bool {
        self.kind == kind && self.value == value
    }

    pub(crate) fn is_op(&self, value: &str) -> bool {
        self.is(Kind::Operator, value)
    }

    pub(crate) fn is_bracket(&self, value: &str) -> bool {
        self.is(Kind::Bracket, value)
    }
}

/// Go prints tokens as `Kind("value")`, or just `Kind` when the value is empty.
impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            f.write_str(self.kind.go_name())
        } else {
            write!(f, "{}({})", self.kind.go_name(), gofmt::quote(&self.value))
        }
    }
}

/// A lexing error: the message and the byte offset it points at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LexError {
    pub(crate) message: String,
    pub(crate) offset: usize,
}

const EOF: Option<char> = None;

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    start: usize,
    end: usize,
    tokens: Vec<Token>,
    err: Option<LexError>,
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut l = Lexer {
        src,
        chars: src.char_indices().collect(),
        start: 0,
        end: 0,
        tokens: Vec::new(),
        err: None,
    };
    l.run();
    match l.err {
        Some(err) => Err(err),
        None => Ok(l.tokens),
    }
}

fn is_alpha(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphabetic()
}

fn is_alnum(c: char) -> bool {
    is_alpha(c) || c.is_numeric()
}

impl Lexer<'_> {
    /// Byte offset of the char at `index` (or the source length past the end).
    fn byte(&self, index: usize) -> usize {
        self.chars.get(index).map_or(self.src.len(), |&(b, _)| b)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.end).map(|&(_, c)| c);
        self.end += 1;
        c
    }

    fn backup(&mut self) {
        self.end -= 1;
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while matches!(self.next(), Some(c) if valid.contains(c)) {}
        self.backup();
    }

    fn word(&self) -> String {
        let end = self.end.min(self.chars.len());
        if self.start > end {
            return String::new();
        }
        self.src[self.byte(self.start)..self.byte(end)].to_string()
    }

    fn emit(&mut self, kind: Kind) {
        let value = self.word();
        self.emit_value(kind, value);
    }

    fn emit_value(&mut self, kind: Kind, value: String) {
        let from = self.byte(self.start);
        let to = self.byte(self.end.min(self.chars.len()));
        self.tokens.push(Token {
            kind,
            value,
            from,
            to,
        });
        self.start = self.end;
    }

    fn skip(&mut self) {
        self.start = self.end;
    }

    fn error(&mut self, message: String) {
        if self.err.is_none() {
            let offset = self.byte(self.end.saturating_sub(1).min(self.chars.len()));
            self.err = Some(LexError { message, offset });
        }
    }

    fn run(&mut self) {
        loop {
            if self.err.is_some() {
                return;
            }
            let c = self.next();
            match c {
                None => {
                    // Go points the EOF token at the last character.
                    let at = self.byte(self.chars.len().saturating_sub(1));
                    self.tokens.push(Token {
                        kind: Kind::Eof,
                        value: String::new(),
                        from: at,
                        to: at,
                    });
                    return;
                }
                Some(c) if c.is_whitespace() => self.skip(),
                Some(q @ ('\'' | '"')) => self.string(q),
                Some('`') => self.raw_string(),
                Some('0'..='9') => {
                    self.backup();
                    self.number();
                }
                Some('?') => {
                    self.accept(".?");
                    self.emit(Kind::Operator);
                }
                Some('/') => self.slash(),
                Some('#') => self.pointer(),
                Some('|') => {
                    self.accept("|");
                    self.emit(Kind::Operator);
                }
                Some(':') => {
                    self.accept(":");
                    self.emit(Kind::Operator);
                }
                Some('(' | '[' | '{' | ')' | ']' | '}') => self.emit(Kind::Bracket),
                Some(',' | ';' | '%' | '+' | '-' | '^') => self.emit(Kind::Operator),
                Some('&' | '!' | '=' | '*' | '<' | '>') => {
                    self.accept("&=*");
                    self.emit(Kind::Operator);
                }
                Some('.') => self.dot(),
                Some(c) if is_alnum(c) => {
                    self.backup();
                    self.identifier();
                }
                Some(c) => self.error(format!(
                    "unrecognized character: U+{:04X} {}",
                    c as u32,
                    gofmt::quote_rune(c)
                )),
            }
        }
    }

    fn string(&mut self, quote: char) {
        let mut c = self.next();
        while c != Some(quote) {
            match c {
                None | Some('\n') => {
                    self.error("literal not terminated".into());
                    return;
                }
                Some('\\') => c = self.escape(quote),
                Some(_) => c = self.next(),
            }
        }
        match gofmt::unescape(&self.word()) {
            Ok(s) => self.emit_value(Kind::String, s),
            Err(e) => self.error(e),
        }
    }

    /// Validates one escape sequence (after the backslash) and returns the char after it.
    fn escape(&mut self, quote: char) -> Option<char> {
        let c = self.next();
        match c {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => self.next(),
            Some(c) if c == quote => self.next(),
            Some(d @ '0'..='7') => self.digits(Some(d), 8, 3),
            Some('x') => {
                let n = self.next();
                self.digits(n, 16, 2)
            }
            Some('u') => {
                let n = self.next();
                self.digits(n, 16, 4)
            }
            Some('U') => {
                let n = self.next();
                self.digits(n, 16, 8)
            }
            _ => {
                self.error("invalid char escape".into());
                c
            }
        }
    }

    fn digits(&mut self, mut c: Option<char>, base: u32, mut n: usize) -> Option<char> {
        while n > 0 && c.and_then(|c| c.to_digit(16)).is_some_and(|d| d < base) {
            c = self.next();
            n -= 1;
        }
        if n > 0 {
            self.error("invalid char escape".into());
        }
        c
    }

    fn raw_string(&mut self) {
        loop {
            match self.next() {
                None => {
                    self.error("literal not terminated".into());
                    return;
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        let inner = self.src[self.byte(self.start + 1)..self.byte(self.end - 1)].to_string();
        self.emit_value(Kind::String, inner);
    }

    fn number(&mut self) {
        if !self.scan_number() {
            let word = self.word();
            self.error(format!("bad number syntax: {}", gofmt::quote(&word)));
            return;
        }
        self.emit(Kind::Number);
    }

    fn scan_number(&mut self) -> bool {
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        let end = self.end;
        if self.accept(".") {
            // `1..2` is a range, not the float `1.` followed by `.2`.
            if self.peek() == Some('.') {
                self.end = end;
                return true;
            }
            self.accept_run(digits);
        }
        if self.accept("eE") {
            self.accept("+-");
            self.accept_run(digits);
        }
        if self.peek().is_some_and(is_alnum) {
            self.next();
            return false;
        }
        true
    }

    fn dot(&mut self) {
        if self.accept("0123456789") {
            // `.5` is a number; the scan continues after the dot, as Go's does.
            self.backup();
            self.number();
            return;
        }
        self.accept(".");
        self.emit(Kind::Operator);
    }

    fn identifier(&mut self) {
        while self.next().is_some_and(is_alnum) {}
        self.backup();
        match self.word().as_str() {
            "not" => self.not(),
            "in" | "or" | "and" | "matches" | "contains" | "startsWith" | "endsWith" | "let"
            | "if" | "else" => self.emit(Kind::Operator),
            _ => self.emit(Kind::Identifier),
        }
    }

    /// `not` may start `not in`, `not matches`, ...: Go emits both words as operators.
    fn not(&mut self) {
        self.emit(Kind::Operator);
        while self.peek() == Some(' ') {
            self.next();
        }
        self.skip();
        let end = self.end;
        while self.next().is_some_and(is_alnum) {}
        self.backup();
        match self.word().as_str() {
            "in" | "matches" | "contains" | "startsWith" | "endsWith" => self.emit(Kind::Operator),
            _ => self.end = end,
        }
    }

    fn slash(&mut self) {
        if self.accept("/") {
            while !matches!(self.next(), EOF | Some('\n')) {}
            if self.end > self.chars.len() {
                self.end = self.chars.len();
            }
            self.skip();
        } else if self.accept("*") {
            loop {
                match self.next() {
                    None => {
                        self.error("unclosed comment".into());
                        return;
                    }
                    Some('*') if self.accept("/") => break,
                    Some(_) => {}
                }
            }
            self.skip();
        } else {
            self.emit(Kind::Operator);
        }
    }

    fn pointer(&mut self) {
        self.accept("#");
        self.emit(Kind::Operator);
        while self.next().is_some_and(is_alnum) {}
        self.backup();
        if !self.word().is_empty() {
            self.emit(Kind::Identifier);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<String> {
        lex(src)
            .unwrap()
            .into_iter()
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn splits_like_go() {
        assert_eq!(
            kinds("result[0] >= 0.95"),
            [
                "Identifier(\"result\")",
                "Bracket(\"[\")",
                "Number(\"0\")",
                "Bracket(\"]\")",
                "Operator(\">=\")",
                "Number(\"0.95\")",
                "EOF"
            ]
        );
        assert_eq!(
            kinds("x not in [1..2]"),
            [
                "Identifier(\"x\")",
                "Operator(\"not\")",
                "Operator(\"in\")",
                "Bracket(\"[\")",
                "Number(\"1\")",
                "Operator(\"..\")",
                "Number(\"2\")",
                "Bracket(\"]\")",
                "EOF"
            ]
        );
        assert_eq!(
            kinds("all(r, #index > 0) // done"),
            [
                "Identifier(\"all\")",
                "Bracket(\"(\")",
                "Identifier(\"r\")",
                "Operator(\",\")",
                "Operator(\"#\")",
                "Identifier(\"index\")",
                "Operator(\">\")",
                "Number(\"0\")",
                "Bracket(\")\")",
                "EOF"
            ]
        );
    }

    #[test]
    fn strings_unescape() {
        let t = lex(r#"'a\'b' "\u00e9\n" `raw\n`"#).unwrap();
        assert_eq!(t[0].value, "a'b");
        assert_eq!(t[1].value, "é\n");
        assert_eq!(t[2].value, "raw\\n");
    }

    #[test]
    fn errors() {
        assert_eq!(lex("'abc").unwrap_err().message, "literal not terminated");
        assert_eq!(lex("1a").unwrap_err().message, "bad number syntax: \"1a\"");
        assert_eq!(
            lex("a @ b").unwrap_err().message,
            "unrecognized character: U+0040 '@'"
        );
        assert_eq!(lex("/* x").unwrap_err().message, "unclosed comment");
    }
}
