-- Message normalisation for error fingerprinting: messages that differ only in ids, numbers,
-- dates, addresses... normalise to one text, so they fall into one issue. The placeholders and
-- their order follow Sentry's parameterisation (see shared/reference/grouping.md); the
-- patterns are our own, written for PostgreSQL's regular expressions.
--
-- Why it is built this way:
-- * One regexp_replace per kind, in Sentry's order. Sentry runs one combined regex whose
--   first matching alternative wins at each position; a PostgreSQL regex prefers the longest
--   alternative, and regexp_replace has a single replacement text, so a combined regex could
--   not tell which placeholder matched. Kinds run one after another give the same result
--   except where an earlier kind's match would start inside a later kind's; the digit
--   look-arounds of the date patterns cover the case that matters (10000-01-02 stays three
--   integers). git_sha runs before hex: they match disjoint tokens, and hex then needs no
--   length limit that spares git's seven characters.
-- * Speed. PostgreSQL builds a regex's DFA afresh on every call, so a call costs roughly the
--   pattern's size times the distinct characters it meets, and look-arounds are dear. Hence
--   cheap strpos/length/small-regex tests skip the kinds that can not occur; the large
--   patterns (TLD lists, month names, IPv6) run only behind such a test; look-aheads are
--   spelled out as alternatives where that is cheaper. Measured on PostgreSQL 15, one core:
--   about 5 us for a short message without digits, 15 us with a few numbers, 35-55 us for
--   two lines or a message full of ids, dates and urls; at most about 2 ms for any input.
-- * Patterns are constants, so each backend compiles each once (about 10 ms for all, on
--   first use) and keeps it in its regex cache. That cache holds 32 patterns per backend;
--   this function has 29, of which one message runs 2 to 14, so the rare ones are the
--   ones other code evicts. Expanded syntax ((?x): blanks and # comments ignored, [ ] is a
--   blank) keeps them readable. They are dollar-quoted: the backslashes of a plain literal
--   would change meaning in a session with standard_conforming_strings off.
-- * Digits are [0-9] (\d follows the locale). Word boundaries (\y, \w) follow the database's
--   LC_CTYPE: in a UTF-8 locale é is a word character, as in Sentry; under C it is not.
--
-- Bounds: only the first 10000 characters are read; of them, the first two non-empty lines
-- (line breaks \n and \r), each trimmed of blanks and cut to 1000 characters. A 1 MB message
-- costs what a 10 kB one does; one whose text starts after 10000 blank characters gives ''.
-- Idempotent: normalising the result again changes nothing, as long as replacing did not grow
-- a line past 1000 characters.
--
-- Deliberately unlike Sentry (each one a case in pgtap/errors/normalize.sql):
-- * Lines are trimmed one by one and joined by \n; Sentry trims the two-line text as a whole
--   and appends '...' when it dropped anything, which splits a message from its longer twin.
-- * email: the local part leaves out ' = / ` { | }, so key='bob@x.org' keeps its key.
-- * url: any scheme (postgres://, tcp://, redis://...), not only http(s), ws(s) and ftp; a url
--   stops at quotes and backticks.
-- * hostname: Sentry's common TLDs plus dev, ai, local and internal; labels of any length.
-- * ip: an IPv6 address needs a digit (Fee::add() stays code; a bare :: is still <ip>), and
--   may carry a zone (%eth0) and a prefix length (/64), as may IPv4 (/8). IPv6 written as six
--   groups and an IPv4 address without :: is not recognised (Sentry does not either).
-- * traceparent: any two-hex-digit version and flags.
-- * date: months 01-12 and days 01-31 only, and no match inside a longer digit run;
--   RFC 822/850/1123 with the weekday and the zone optional (any zone ending in T);
--   "January 18, 2019" with full month names; fractional seconds on bare times; C asctime()
--   and Unix date(1); datetime.date(...) and datetime.time(...) reprs too, nested
--   parentheses two deep.
-- * duration: also ns, us, µs, min, m and h, and Go's compound 1h2m3.5s; word boundaries on
--   both sides (Sentry's 1.5s needs none before it, its 10ms none after it).
-- * hex: no upper length limit (Sentry leaves a run of 129 or more as it is), and a
--   seven-character upper case id is <hex> (Sentry keeps it: its git_sha is lower case only).
-- * float: a leading minus counts only where int's would (x-1.5 keeps its dash).
-- * int: the 8 of utf-8 stays (a false positive Sentry lists as known).
-- * quoted_str: stops at a line break; bool: needs a word boundary after it.
CREATE OR REPLACE FUNCTION monitoring.normalize_message(p_message text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
STRICT
PARALLEL SAFE
AS $fn$
DECLARE
    c_blanks CONSTANT text := E' \t\f\x0B';  -- \x0B: E'' strings have no \v
    v_window text;
    v_lines text[];
    v_text text;
    v_has_digit boolean;
    v_has_hex boolean;
    v_utf boolean;
BEGIN
    -- Most messages are one short line: spare them left(), which counts characters.
    IF pg_catalog.octet_length(p_message) <= 1000
        AND pg_catalog.strpos(p_message, E'\n') = 0 AND pg_catalog.strpos(p_message, E'\r') = 0
        THEN
        v_text := pg_catalog.btrim(p_message, c_blanks);
    ELSE
        v_window := pg_catalog.left(p_message, 10000);
        IF pg_catalog.strpos(v_window, E'\n') = 0 AND pg_catalog.strpos(v_window, E'\r') = 0
            THEN
            v_text := pg_catalog.rtrim(
                pg_catalog.left(pg_catalog.ltrim(v_window, c_blanks), 1000), c_blanks
            );
        ELSE
            -- The blank-or-break runs skip blank lines and the next line's leading blanks.
            v_lines := pg_catalog.regexp_match(v_window, $re$(?x)
                ^ [ \t\f\v\n\r]* ( [^\n\r]* ) (?: [\n\r] [ \t\f\v\n\r]* ( [^\n\r]* ) )?
            $re$);
            v_text := pg_catalog.rtrim(pg_catalog.left(v_lines[1], 1000), c_blanks);
            IF v_lines[2] <> '' THEN
                v_text := v_text || E'\n'
                    || pg_catalog.rtrim(pg_catalog.left(v_lines[2], 1000), c_blanks);
            END IF;
        END IF;
    END IF;

    -- Email before url and hostname: its domain is a hostname, and the user:pw@host of a url
    -- becomes part of the <url> that follows anyway.
    IF pg_catalog.strpos(v_text, '@') > 0 THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            [A-Za-z0-9.!#$%&*+?^_~-]+ @ [A-Za-z0-9-]+ (?: \. [A-Za-z0-9-]+ )*
        $re$, '<email>', 'g');
    END IF;

    -- A url takes the hostnames, addresses and ids inside it along.
    IF pg_catalog.strpos(v_text, '://') > 0 THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y [A-Za-z] [A-Za-z0-9+.-]* :// [^\s/$.?#"'`] [^\s"'`]*
        $re$, '<url>', 'g');
    END IF;

    -- The TLD lists make these the dearest patterns, so a cheap one looks for a dotted name
    -- first. A TLD is all lower or all upper case (end.It is a missing blank), and most are
    -- lower: the upper case list, as dear as the other, runs only when it may match.
    IF pg_catalog.strpos(v_text, '.') > 0
        AND v_text ~ $re$\y[A-Za-z0-9-]+\.[A-Za-z]{2}$re$ THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y (?: [A-Za-z0-9-]+ \. )+
            (?: a(?:e|i|l|pp|r|t|u) | b(?:e|g|iz|r|y) | c(?:a|at|c|f|h|l|lub|n|o|om|z)
              | d(?:e|ev|k) | e(?:du|e|s|u) | f(?:i|m|r) | g(?:a|ov|q|r) | h(?:k|r|u)
              | i(?:d|e|l|n|nfo|nternal|o|r|s|t) | j(?:obs|p) | k(?:r|z)
              | l(?:a|ink|ocal|t|v|y) | m(?:e|obi|s|x|y) | n(?:et|ews|g|l|o|z) | o(?:nline|rg)
              | p(?:e|h|l|ro|t) | r(?:o|s|u) | s(?:a|e|g|i|ite|k) | t(?:h|ips|k|o|r|v|w)
              | u(?:a|g|k|s) | vn | wiki | x(?:xx|yz) | za )
            \y
        $re$, '<hostname>', 'g');
        IF v_text ~ $re$\y[A-Za-z0-9-]+\.[A-Z]{2}$re$ THEN
            v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
                \y (?: [A-Za-z0-9-]+ \. )+
                (?: A(?:E|I|L|PP|R|T|U) | B(?:E|G|IZ|R|Y) | C(?:A|AT|C|F|H|L|LUB|N|O|OM|Z)
                  | D(?:E|EV|K) | E(?:DU|E|S|U) | F(?:I|M|R) | G(?:A|OV|Q|R) | H(?:K|R|U)
                  | I(?:D|E|L|N|NFO|NTERNAL|O|R|S|T) | J(?:OBS|P) | K(?:R|Z)
                  | L(?:A|INK|OCAL|T|V|Y) | M(?:E|OBI|S|X|Y) | N(?:ET|EWS|G|L|O|Z)
                  | O(?:NLINE|RG) | P(?:E|H|L|RO|T) | R(?:O|S|U) | S(?:A|E|G|I|ITE|K)
                  | T(?:H|IPS|K|O|R|V|W) | U(?:A|G|K|S) | VN | WIKI | X(?:XX|YZ) | ZA )
                \y
            $re$, '<hostname>', 'g');
        END IF;
    END IF;

    -- Cheap tests that let most messages skip most patterns. Every hex kind (traceparent,
    -- uuid, sha1, md5, swift_txn_id, git_sha, hex) needs a digit next to a hex letter, 0x, or
    -- a word starting with 8 hex digits; the placeholders put in later add no such token.
    v_has_digit := v_text ~ '[0-9]';
    v_has_hex := v_text ~ $re$[0-9][a-fA-F]|[a-fA-F][0-9]|0[xX]|\y[0-9a-fA-F]{8}$re$;

    -- IPv6 with :: runs only where a digit touches the :: (directly or through hex digits
    -- and colons) or where :: stands alone, so that Rust, C++ and Ruby paths (Foo::Bar)
    -- cost little. The look-behind and look-ahead keep a::b::c and Class::method out.
    IF pg_catalog.strpos(v_text, '::') > 0 AND v_text ~ $re$(?x)
        :: [0-9A-Fa-f:]* [0-9] | [0-9] [0-9A-Fa-f:]* :: | (?<! [\w:] ) :: (?! [\w:] )
    $re$ THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            (?<! [\w:.] )
            (?: (?= [0-9A-Fa-f:.]* [0-9] )
                (?: [0-9A-Fa-f]{1,4} (?: : [0-9A-Fa-f]{1,4} )* )? ::
                (?: (?: [0-9A-Fa-f]{1,4} : )* [0-9]{1,3} (?: \. [0-9]{1,3} ){3}
                  | [0-9A-Fa-f]{1,4} (?: : [0-9A-Fa-f]{1,4} )* )?
              | :: )
            (?: % [0-9A-Za-z]+ )? (?: / [0-9]{1,3} )?
            (?! [\w:] )
        $re$, '<ip>', 'g');
    END IF;
    -- Eight groups without ::, which needs at least seven colons. (octet_length here and
    -- below: length counts characters one by one, and a byte count serves as well.)
    IF pg_catalog.octet_length(v_text)
        - pg_catalog.octet_length(pg_catalog.replace(v_text, ':', '')) >= 7 THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            (?<! [\w:.] ) [0-9A-Fa-f]{1,4} (?: : [0-9A-Fa-f]{1,4} ){7}
            (?: % [0-9A-Za-z]+ )? (?: / [0-9]{1,3} )? (?! [\w:] )
        $re$, '<ip>', 'g');
    END IF;
    IF v_has_digit AND pg_catalog.strpos(v_text, '.') > 0 THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y (?: (?: 25[0-5] | 2[0-4][0-9] | [01]?[0-9]?[0-9] ) \. ){3}
            (?: 25[0-5] | 2[0-4][0-9] | [01]?[0-9]?[0-9] ) (?: / [0-9]{1,2} )? \y
        $re$, '<ip>', 'g');
    END IF;

    IF v_has_hex AND pg_catalog.strpos(v_text, '-') > 0 AND pg_catalog.octet_length(v_text) >= 35
        THEN
        -- W3C traceparent (version-trace id-parent id-flags), AWS X-Amzn-Trace-Id root.
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y (?: [0-9a-f]{2} - [0-9a-f]{32} - [0-9a-f]{16} - [0-9a-f]{2}
                 | 1 - [0-9a-f]{8} - [0-9a-f]{24} ) \y
        $re$, '<traceparent>', 'g');
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y [0-9A-Fa-f]{8} - [0-9A-Fa-f]{4} - [0-9A-Fa-f]{4} - [0-9A-Fa-f]{4}
            - [0-9A-Fa-f]{12} \y
        $re$, '<uuid>', 'g');
    END IF;

    -- Longest first: a SHA-1 holds 32 hex digits that would otherwise be an MD5.
    IF v_has_hex AND pg_catalog.octet_length(v_text) >= 32 THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$\y[0-9A-Fa-f]{40}\y$re$, '<sha1>', 'g');
        v_text := pg_catalog.regexp_replace(v_text, $re$\y[0-9A-Fa-f]{32}\y$re$, '<md5>', 'g');
    END IF;

    -- Dates before durations, hex and numbers, which would take them apart; the named forms
    -- before the numeric ones, which would take their times out. The digit look-arounds
    -- stand in for Sentry's left-to-right scan, where 10000-01-02 is an int before a date
    -- could start inside it.
    IF v_has_digit AND (
        pg_catalog.strpos(v_text, 'Jan') > 0 OR pg_catalog.strpos(v_text, 'Feb') > 0
        OR pg_catalog.strpos(v_text, 'Mar') > 0 OR pg_catalog.strpos(v_text, 'Apr') > 0
        OR pg_catalog.strpos(v_text, 'May') > 0 OR pg_catalog.strpos(v_text, 'Jun') > 0
        OR pg_catalog.strpos(v_text, 'Jul') > 0 OR pg_catalog.strpos(v_text, 'Aug') > 0
        OR pg_catalog.strpos(v_text, 'Sep') > 0 OR pg_catalog.strpos(v_text, 'Oct') > 0
        OR pg_catalog.strpos(v_text, 'Nov') > 0 OR pg_catalog.strpos(v_text, 'Dec') > 0
        OR pg_catalog.strpos(v_text, 'datetime.') > 0
    ) AND v_text ~ $re$(?x) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*[ -]+[0-9]
        |datetime\.$re$ THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
          # RFC 822, 850, 1123 and cookies: [Mon, ]02 Jan 2006 15:04[:05][ MST]
            (?: (?: Mon|Tue|Wed|Thu|Fri|Sat|Sun ) [a-z]{0,6} ,[ ] )?
            (?<! [0-9] ) [0-9]{1,2} [ -] (?: Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec )
            [ -] [0-9]{2,4} [ ] [0-9]{1,2} : [0-9]{2} (?: : [0-9]{2} )?
            (?: [ ] (?: [+-][0-9]{4} | UTC? | [A-Z]{1,4}T | Z ) \y )?
          # JavaScript Date.prototype.toString()
          | \y (?: Mon|Tue|Wed|Thu|Fri|Sat|Sun )
            [ ] (?: Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec ) [ ] [0-9]{2} [ ] [0-9]{4}
            [ ] [0-9]{2} : [0-9]{2} : [0-9]{2} [ ] GMT [+-] [0-9]{4}
            (?: [ ] \( [^)\n]* \) )?
          # C asctime() and Unix date(1): [Mon ]Jan  2 15:04:05[ MST] 2006
          | \y (?: (?: Mon|Tue|Wed|Thu|Fri|Sat|Sun ) [ ] )?
            (?: Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec ) [ ]+ [0-9]{1,2}
            [ ] [0-9]{2} : [0-9]{2} : [0-9]{2} (?: [ ] [A-Z]{3,4} )? [ ] [0-9]{4} (?! [0-9] )
          # prose: [Monday, ]January 18, 2019
          | \y (?: (?: Mon|Tue|Wed|Thu|Fri|Sat|Sun ) [a-z]{0,6} ,? [ ] )?
            (?: Jan(?:uary)? | Feb(?:ruary)? | Mar(?:ch)? | Apr(?:il)? | May | June? | July?
              | Aug(?:ust)? | Sep(?:t|tember)? | Oct(?:ober)? | Nov(?:ember)? | Dec(?:ember)? )
            [ ] [0-9]{1,2} , [ ] [0-9]{2,4} (?! [0-9] )
          # Python reprs: datetime.datetime(2025, 6, 24, 18, 33, tzinfo=...)
          | \y datetime \. (?: datetime | date | time )
            \( (?: [^()\n] | \( (?: [^()\n] | \( [^()\n]* \) )* \) )* \)
        $re$, '<date>', 'g');
    END IF;
    -- Every numeric form has four digits in a row or a digit, a colon and a minute digit:
    -- a cheap test that spares most messages the pattern.
    IF v_has_digit AND v_text ~ '[0-9]{4}|[0-9]:[0-5]' THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
          # ISO 8601 / RFC 3339: dashed or compressed date, then maybe T or blank and a time
            (?<! [0-9] ) [0-9]{4} -? (?: 0[1-9] | 1[0-2] ) -? (?: 0[1-9] | [12][0-9] | 3[01] )
            (?: [T ] (?: [01][0-9] | 2[0-3] ) :? [0-5][0-9]
                (?: :? [0-5][0-9] (?: [.,] [0-9]+ )? )?
                (?: Z (?: [+-]? [0-2][0-9] :? [0-5][0-9] )?
                  | [+-] [0-2][0-9] (?: :? [0-5][0-9] )? )?
            )? (?! [0-9] )
          # clock time, 24-hour or 12-hour with AM/PM
          | (?<! [0-9] ) (?: [01]?[0-9] | 2[0-3] ) : [0-5][0-9]
            (?: : [0-5][0-9] (?: \. [0-9]+ )? )? (?! [0-9:] ) (?: [ ]? [AaPp][Mm] \y )?
        $re$, '<date>', 'g');
    END IF;

    IF v_has_digit THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y (?: [0-9]+ (?: \. [0-9]+ )? (?: ns | us | [µμ]s | ms | min | s | m | h ) )+ \y
        $re$, '<duration>', 'g');
    END IF;

    -- OpenStack Swift: tx, 21 hex digits, a dash, 10 hex digits, then whatever suffix the
    -- cluster or the client added (it belongs to the id).
    IF v_has_hex AND pg_catalog.strpos(v_text, 'tx') > 0 THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y tx [0-9a-f]{21} - [0-9a-f]{10} [^\s"'<>]*
        $re$, '<swift_txn_id>', 'g');
    END IF;

    -- Git prints short SHAs in lower case; a digit and a letter both, so that 4150908 stays
    -- an int and cabcafe a word. Spelled out by where the first letter (digit) follows a
    -- run of digits (letters): two look-aheads would cost more than the whole pattern.
    IF v_has_digit AND v_has_hex THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x) \y
            (?: [0-9]{1}[a-f][0-9a-f]{5} | [0-9]{2}[a-f][0-9a-f]{4} | [0-9]{3}[a-f][0-9a-f]{3}
              | [0-9]{4}[a-f][0-9a-f]{2} | [0-9]{5}[a-f][0-9a-f]{1} | [0-9]{6}[a-f]
              | [a-f]{1}[0-9][0-9a-f]{5} | [a-f]{2}[0-9][0-9a-f]{4} | [a-f]{3}[0-9][0-9a-f]{3}
              | [a-f]{4}[0-9][0-9a-f]{2} | [a-f]{5}[0-9][0-9a-f]{1} | [a-f]{6}[0-9] )
            \y
        $re$, '<git_sha>', 'g');
    END IF;

    -- Without 0x: one letter case only; 8 or more characters (a run of 8+ digits is an id
    -- rather than a count), or 4 and more with a digit and a letter both, which keeps words
    -- (cafe, deadbee, Facade) and short numbers out.
    IF v_has_hex THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            \y 0 [xX] [0-9A-Fa-f]+ \y
          | (?: \y | (?<! [\w>] ) - )
            (?: [0-9a-f]{8} [0-9a-f]* | [0-9A-F]{8} [0-9A-F]*
              | (?: [0-9]{3,}[a-f] | [0-9]{2}[a-f][0-9a-f] | [0-9][a-f][0-9a-f]{2}
                  | [a-f]{3,}[0-9] | [a-f]{2}[0-9][0-9a-f] | [a-f][0-9][0-9a-f]{2} ) [0-9a-f]*
              | (?: [0-9]{3,}[A-F] | [0-9]{2}[A-F][0-9A-F] | [0-9][A-F][0-9A-F]{2}
                  | [A-F]{3,}[0-9] | [A-F]{2}[0-9][0-9A-F] | [A-F][0-9][0-9A-F]{2} ) [0-9A-F]* )
            \y
        $re$, '<hex>', 'g');
    END IF;

    IF v_has_digit THEN
        -- A dash is a minus sign only where it does not join two tokens: x-908 keeps it, and
        -- so does 58cc-4372, which is <hex>-4372 by now (hence > in the look-behind).
        IF pg_catalog.strpos(v_text, '.') > 0 THEN
            v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
                (?: \y | (?<! [\w>] ) - ) [0-9]+ \. [0-9]+ \y
            $re$, '<float>', 'g');
        END IF;
        -- Runs of 8 and more digits are <hex> by now, hence + rather than {1,7}, which costs
        -- twice as much. utf-8 names an encoding: a word character after its dash hides the
        -- 8 from the pattern for a moment (a look-behind would triple the pattern's cost).
        v_utf := pg_catalog.strpos(v_text, 'tf-') > 0 OR pg_catalog.strpos(v_text, 'TF-') > 0;
        IF v_utf THEN
            v_text := pg_catalog.replace(
                pg_catalog.replace(v_text, 'utf-', 'utf-_'), 'UTF-', 'UTF-_'
            );
        END IF;
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            (?: \y | (?<! [\w>] ) - ) [0-9]+ \y
        $re$, '<int>', 'g');
        IF v_utf THEN
            v_text := pg_catalog.replace(
                pg_catalog.replace(v_text, 'utf-_', 'utf-'), 'UTF-_', 'UTF-'
            );
        END IF;
    END IF;

    -- Last, so that a quoted value's parts are placeholders already: b='1' and b='2' agree
    -- either way. Only directly after =, the value half of key=value.
    IF pg_catalog.strpos(v_text, '=') > 0 THEN
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            (?<= = ) (?: ' [^'\n]+ ' | " [^"\n]+ " )
        $re$, '<quoted_str>', 'g');
        v_text := pg_catalog.regexp_replace(v_text, $re$(?x)
            (?<= = ) (?: [Tt]rue | [Ff]alse ) \y
        $re$, '<bool>', 'g');
    END IF;

    RETURN v_text;
END
$fn$;

COMMENT ON FUNCTION monitoring.normalize_message(text) IS
'The first two non-empty lines of p_message, with ids, numbers, dates, addresses... replaced
by placeholders such as <int>, <uuid>, <date>, to group messages that differ only in them';

GRANT EXECUTE ON FUNCTION monitoring.normalize_message(text)
TO monitoring_reader, monitoring_writer, monitoring_admin;
