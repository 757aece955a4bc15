// Package speech puts text-to-speech and speech recognition behind two small interfaces, with
// offline implementations on Debian packages: espeak-ng (Synthesizer) and pocketsphinx with its
// US English model (Recognizer). It also maps Azure voice names to espeak-ng voices, cleans the
// SSML an app sends before espeak-ng sees it, and matches recognised speech and tones to the
// choices of a recognize request as Call Automation does.
package speech

import (
	"strings"
)

// espeakLangs are the languages espeak-ng 1.51 (Debian 12) speaks, as `espeak-ng --voices`
// lists them.
var espeakLangs = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Fields(`af am an ar as az ba be bg bn bpy bs ca cmn cs cv cy da de el en-029 en-gb
		en-gb-scotland en-us eo es es-419 et eu fa fi fr-be fr-ch fr-fr ga gd gn grc gu hak haw he hi hr ht hu hy
		hyw ia id io is it ja jbo ka kk kl kn ko kok ku ky la lb lfn lt ltg lv mi mk ml mr ms mt my nb nci ne nl
		nog om or pa pap piqd pl pt pt-br py qdb qu quc qya ro ru ru-lv sd shn si sjn sk sl smj sq sr sv sw ta te
		th tk tn tr tt ug uk ur uz vi yue`) {
		m[l] = true
	}
	return m
}()

// localeAliases maps Azure locales whose espeak-ng voice is named otherwise.
var localeAliases = map[string]string{
	"en-au": "en-gb", "en-nz": "en-gb", "en-ie": "en-gb", "en-za": "en-gb", "en-in": "en-gb", "en-ca": "en-us",
	"en-029": "en-029", "en-jm": "en-029", "en-tt": "en-029",
	"fr-fr": "fr-fr", "fr-ca": "fr-fr", "fr-be": "fr-be", "fr-ch": "fr-ch",
	"es-mx": "es-419", "es-us": "es-419", "es-ar": "es-419", "es-co": "es-419", "es-cl": "es-419", "es-pe": "es-419",
	"pt-br": "pt-br", "pt-pt": "pt", "zh-cn": "cmn", "zh-tw": "cmn", "zh-sg": "cmn", "zh-hk": "yue",
	"nb-no": "nb", "no": "nb", "fil-ph": "id", "he-il": "he", "iw": "he",
}

// femaleNames are the given names of Azure neural voices that are female (a name not listed
// is taken as male, espeak-ng's default).
var femaleNames = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(`jenny aria ava emma jane nancy sara michelle amber ashley cora elizabeth
		monica libby sonia maisie hollie abbi bella natasha annette carly elsie freya joanne kim tina clara
		denise brigitte celeste coralie eloise jacqueline josephine yvette sylvie ariane katja amala elke gisela
		klarissa louisa maja tanja seraphina elvira abril estrella irene laia lia triana vera dalia beatriz
		candela carlota larissa marina nuria renata francisca raquel isabella elsa fabiola fiamma imelda irma
		palmira pierina nanami aoi mayu shiori sunhi jimin xiaoxiao xiaoyi xiaochen xiaohan xiaomo hiumaan
		hsiaochen hsiaoyu swara neerja fenna colette hillevi sofie iselin pernille zofia agnieszka svetlana
		darya polina alba emily heather hannah salma zariyah leah serena`) {
		m[n] = true
	}
	return m
}()

// Voice is an espeak-ng voice: a language and a variant.
type Voice struct {
	Lang   string // espeak-ng language, e.g. "en-us"
	Female bool
}

// Name is the -v argument ("en-us", or "en-us+f3" for the female variant).
func (v Voice) Name() string {
	if v.Female {
		return v.Lang + "+f3"
	}
	return v.Lang
}

// MapVoice picks the espeak-ng voice for a TextSource: the locale of voiceName
// ("en-US-JennyNeural" → en-US), else sourceLocale, else en-US; a female given name (Jenny) or
// voiceKind "female" selects the female variant. Locales espeak-ng lacks fall back to their
// language ("de-AT" → de), then to en-us.
func MapVoice(voiceName, sourceLocale, voiceKind string) Voice {
	locale := sourceLocale
	female := strings.EqualFold(voiceKind, "female")
	if parts := strings.Split(voiceName, "-"); len(parts) >= 3 {
		locale = parts[0] + "-" + parts[1]
		given := strings.ToLower(strings.TrimSuffix(strings.Join(parts[2:], "-"), "Neural"))
		given = strings.TrimSuffix(given, "neural")
		given = strings.TrimSuffix(given, "multilingual")
		female = femaleNames[given]
	}
	return Voice{Lang: espeakLang(locale), Female: female}
}

func espeakLang(locale string) string {
	l := strings.ToLower(strings.ReplaceAll(locale, "_", "-"))
	if l == "" {
		return "en-us"
	}
	if a, ok := localeAliases[l]; ok {
		return a
	}
	if espeakLangs[l] {
		return l
	}
	lang, _, _ := strings.Cut(l, "-")
	if a, ok := localeAliases[lang]; ok {
		return a
	}
	switch {
	case espeakLangs[lang]:
		return lang
	case lang == "en":
		return "en-us"
	case lang == "fr":
		return "fr-fr"
	case lang == "zh":
		return "cmn"
	}
	return "en-us"
}
