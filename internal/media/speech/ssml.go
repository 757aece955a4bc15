package speech

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrSSML marks SSML telgw will not speak (wrapped with the reason).
var ErrSSML = errors.New("invalid SSML")

// allowed lists the SSML 1.1 elements passed to espeak-ng and the attributes kept on each.
// Everything else is dropped with its markup but keeps its text: <audio> (espeak-ng's CLI hands
// its src to `sh -c "sox …"`: a shell injection), <mark>, <phoneme>, Azure's <mstts:*>
// extensions. <lexicon> and <desc> are dropped whole.
var allowed = map[string][]string{
	"speak": nil, "p": nil, "s": nil, "paragraph": nil, "sentence": nil,
	"voice":    {"gender"}, // name and xml:lang are mapped (below)
	"prosody":  {"rate", "pitch", "volume", "range"},
	"break":    {"time", "strength"},
	"emphasis": {"level"},
	"say-as":   {"interpret-as", "format"},
	"sub":      {"alias"},
}

var dropWhole = map[string]bool{"lexicon": true, "desc": true, "metadata": true}

// maxDepth bounds element nesting.
const maxDepth = 32

// CleanSSML rewrites ssml into the subset espeak-ng speaks safely: allowed elements and
// attributes only, attribute values limited to [A-Za-z0-9 .%+:_-], <voice name> and xml:lang
// mapped to espeak-ng languages (MapVoice). It also returns the voice of the outermost
// <speak>/<voice> for espeak-ng's -v. DTDs and processing instructions are refused.
func CleanSSML(ssml string) (string, Voice, error) {
	d := xml.NewDecoder(strings.NewReader(ssml))
	d.Strict = true
	d.Entity = nil // only the five predefined entities
	var b strings.Builder
	var stack []string // "" for a dropped element whose text is kept
	skip := 0          // inside a dropped-whole element
	base := Voice{Lang: "en-us"}
	seenVoice := false
	sawSpeak := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", Voice{}, fmt.Errorf("%w: %v", ErrSSML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return "", Voice{}, fmt.Errorf("%w: nested deeper than %d", ErrSSML, maxDepth)
			}
			name := t.Name.Local
			if t.Name.Space != "" && t.Name.Space != "http://www.w3.org/2001/10/synthesis" {
				name = "" // a namespaced extension (mstts:express-as, …)
			}
			if skip > 0 || dropWhole[name] {
				skip++
				stack = append(stack, "-")
				continue
			}
			keep, ok := allowed[name]
			if !ok {
				stack = append(stack, "")
				continue
			}
			if name == "speak" {
				if sawSpeak {
					stack = append(stack, "")
					continue
				}
				sawSpeak = true
			}
			stack = append(stack, name)
			b.WriteString("<" + name)
			var voiceName, lang, gender string
			for _, a := range t.Attr {
				switch {
				case a.Name.Local == "lang":
					lang = a.Value
				case name == "voice" && a.Name.Local == "name":
					voiceName = a.Value
				case name == "voice" && a.Name.Local == "gender":
					gender = a.Value
				default:
					for _, k := range keep {
						if a.Name.Local == k && a.Name.Space == "" && safeAttr(a.Value) {
							fmt.Fprintf(&b, " %s=\"%s\"", k, a.Value)
						}
					}
				}
			}
			if name == "voice" || name == "speak" {
				if voiceName != "" || lang != "" || gender != "" {
					v := MapVoice(voiceName, lang, gender)
					if voiceName == "" && lang == "" {
						v.Lang = base.Lang
					}
					fmt.Fprintf(&b, " xml:lang=\"%s\"", v.Lang)
					if name == "voice" {
						g := "male"
						if v.Female {
							g = "female"
						}
						fmt.Fprintf(&b, " gender=\"%s\"", g)
					}
					if name == "speak" {
						base.Lang = v.Lang
					} else if !seenVoice {
						base, seenVoice = v, true
					}
				}
			}
			b.WriteString(">")
		case xml.EndElement:
			if len(stack) == 0 {
				return "", Voice{}, fmt.Errorf("%w: unbalanced end tag", ErrSSML)
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch top {
			case "-":
				skip--
			case "":
			default:
				b.WriteString("</" + top + ">")
			}
		case xml.CharData:
			if skip == 0 {
				_ = xml.EscapeText(&b, t)
			}
		case xml.Directive, xml.ProcInst:
			if p, ok := t.(xml.ProcInst); ok && p.Target == "xml" {
				continue
			}
			return "", Voice{}, fmt.Errorf("%w: DTDs and processing instructions are not allowed", ErrSSML)
		}
	}
	if !sawSpeak {
		return "", Voice{}, fmt.Errorf("%w: no <speak> element", ErrSSML)
	}
	return b.String(), base, nil
}

func safeAttr(v string) bool {
	if len(v) > 64 {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(" .%+:_-", r):
		default:
			return false
		}
	}
	return true
}
