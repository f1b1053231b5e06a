package ui

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/jitter"
)

// logLines is how many of the session's events the details keep.
const logLines = 8

// detailsPanel is what an engineer would ask about, behind the Details
// button: the connection, the codecs, the latency by stage, loss, the
// clock, the compared safety code, headphones or speakers, where takes
// go, and the session's events word for word.
type detailsPanel struct {
	box                                fyne.CanvasObject
	connection, sending, latency, loss *widget.Label
	clock, safety, browser, events     *widget.Label
	lines                              []string
}

func newDetailsPanel(u *UI, host bool, settings app.Settings, keys func(rune)) *detailsPanel {
	d := &detailsPanel{}
	for _, l := range []**widget.Label{&d.connection, &d.sending, &d.latency, &d.loss, &d.clock, &d.safety, &d.browser, &d.events} {
		*l = small("")
	}
	speakers := newKeyCheck("I listen on speakers (from my next session)", nil, keys)
	speakers.SetChecked(settings.Speakers)
	speakers.OnChanged = func(on bool) {
		st := u.backend.Settings()
		st.Speakers = on
		if err := u.backend.SaveSettings(st); err != nil {
			d.log(sentence(err), u.now())
		}
	}
	items := []fyne.CanvasObject{
		heading("Details"),
		d.connection, d.sending, d.latency, d.loss, d.clock, d.safety, d.browser,
		speakers,
		small("Headphones are better: nothing you hear reaches your microphone, so your partner never hears themself come back and no echo canceller adds delay."),
	}
	if host {
		items = append(items, small("Takes go to "+recordDir(settings)+" (change it in the settings): one folder per take, a file per voice, the track and the mix, lined up as if you sang in one room."))
	}
	items = append(items, heading("What happened"), d.events)
	d.box = container.NewVScroll(container.NewVBox(items...))
	return d
}

// showBrowserLink says where a partner without Duet joins from a browser,
// or why a host's room has no such link; nothing for a guest.
func (d *detailsPanel) showBrowserLink(link string, hosting bool, err error) {
	switch {
	case !hosting:
		d.browser.Hide()
	case err != nil:
		d.browser.SetText("No browser link: " + err.Error() + ".")
	default:
		d.browser.SetText("A partner without Duet joins from a browser at " + link + ".")
	}
}

// log keeps an event's text, as the session said it, with its time.
func (d *detailsPanel) log(text string, at time.Time) {
	if text == "" {
		return
	}
	d.lines = append(d.lines, at.Format("15:04:05")+"  "+text)
	if len(d.lines) > logLines {
		d.lines = d.lines[len(d.lines)-logLines:]
	}
	d.events.SetText(strings.Join(d.lines, "\n"))
}

// refresh shows the session's figures; lat only if live.
func (d *detailsPanel) refresh(state app.State, st app.Stats, live bool, lat app.Latency) {
	d.connection.SetText(connectionText(state, st))
	d.sending.SetText(sendingLine(state, st))
	if live {
		d.latency.SetText(latencyText(lat, st.Peer.Relayed, st.EchoLatency) + ".")
		d.loss.SetText(lossText(st.Voice.Stats, st.DeviceStalls))
	}
	d.clock.SetText(clockText(st.NTP))
}

// partnerText says in plain words where the partner is, calling them by
// their name once they said it; how the connection is made is in the
// details.
func partnerText(state app.State, st app.Stats) string {
	who := "your partner"
	if st.PartnerName != "" {
		who = st.PartnerName
	}
	switch state {
	case app.StateWaiting:
		return "Waiting for your partner to join"
	case app.StateConnecting:
		// A host's new guest has not said their name yet (the one known
		// may be the last guest's).
		return "Connecting to your partner…"
	case app.StateReconnecting:
		return "Connection to " + who + " lost; reconnecting…"
	case app.StateConnected, app.StateDeviceLost:
		if st.Peer.Relayed {
			return "Connected through a relay to " + who
		}
		return "Connected directly to " + who
	case app.StatePartnerLeft:
		if st.PartnerName != "" {
			return st.PartnerName + " is away; the room stays open"
		}
		return "Your partner is away; the room stays open"
	}
	return "The duet is over"
}

// connectionText is how the connection is made, in the engineer's words.
func connectionText(state app.State, st app.Stats) string {
	switch state {
	case app.StateConnected, app.StateReconnecting, app.StateDeviceLost:
	default:
		return ""
	}
	if st.Peer.Candidate == "" {
		return ""
	}
	how := "direct"
	if st.Peer.Relayed {
		how = "through a TURN relay"
	}
	text := fmt.Sprintf("Connection: %s (%s candidate)", how, st.Peer.Candidate)
	if st.Peer.Address != "" {
		text += " to " + st.Peer.Address
	}
	if st.Peer.RTT > 0 {
		text += ", round trip " + duration(st.Peer.RTT)
	}
	return text + "."
}

// sendingLine is what this side sends while connected (codec, bitrate,
// redundancy against loss) and what the partner's last packet came in.
func sendingLine(state app.State, st app.Stats) string {
	switch state {
	case app.StateConnected, app.StateReconnecting, app.StateDeviceLost:
	default:
		return ""
	}
	if st.Bitrate == 0 {
		return ""
	}
	text := sendingText(st.Codec, st.Bitrate, st.Redundancy)
	if st.PartnerCodec != "" {
		text += "; receiving " + st.PartnerCodec
	}
	return strings.ToUpper(text[:1]) + text[1:] + "."
}

// sendingText tells the codec sent (app.Stats.Codec; Opus if not known
// yet), its bitrate (bits per second) and how many earlier frames each
// packet repeats.
func sendingText(codec string, bitrate, redundancy int) string {
	if codec == "" {
		codec = "Opus"
	}
	text := fmt.Sprintf("sending %s at %d kb/s", codec, (bitrate+500)/1000)
	switch {
	case redundancy == 1:
		text += ", each packet repeating the frame before it against loss"
	case redundancy > 1:
		text += fmt.Sprintf(", each packet repeating the %d frames before it against loss", redundancy)
	}
	return text
}

// latencyText is the partner-to-me latency by stage; echo, if not zero,
// is what this side's echo canceller adds the other way (on speakers).
func latencyText(l app.Latency, relayed bool, echo time.Duration) string {
	how := "direct"
	if relayed {
		how = "relayed"
	}
	text := fmt.Sprintf("Your partner → you: %.0f ms (network %.0f, %s; jitter buffer %.0f; codec %.0f; devices %.0f)",
		ms(l.Total()), ms(l.Network), how, ms(l.Jitter), ms(l.Codec), ms(l.Device))
	if echo > 0 {
		text += fmt.Sprintf(". Your echo canceller adds %.1f ms to what your partner hears; headphones need none",
			float64(echo)/float64(time.Millisecond))
	}
	return text
}

// latencyTotal is the one-way total as the header shows it.
func latencyTotal(d time.Duration) string {
	return fmt.Sprintf("%.0f ms one way", ms(d))
}

// lossText counts the partner's packets and what was lost of them, and
// the stalls of this computer's own audio, which no network fixes.
func lossText(v jitter.Stats, stalls int64) string {
	lost := ""
	if all := v.PacketsReceived + v.PacketsLost; all > 0 {
		lost = fmt.Sprintf(" (%.2f %%)", 100*float64(v.PacketsLost)/float64(all))
	}
	text := fmt.Sprintf("Received %d packets; lost %d%s, %d of them recovered from redundancy; %s concealed.",
		v.PacketsReceived, v.PacketsLost, lost, v.PacketsRecovered, duration(audio.Duration(int(v.ConcealedSamples))))
	if stalls > 0 {
		text += fmt.Sprintf(" This computer's audio ran late %d× (a busy computer; if you hear crackles, choose a larger buffer in Settings).", stalls)
	}
	return text
}

// clockText is the NTP cross-check of this computer's clock as a
// sentence, or nothing.
func clockText(n app.NTPStatus) string {
	t := ntpText(n)
	if t == "" {
		return ""
	}
	return strings.ToUpper(t[:1]) + t[1:] + "."
}

// ntpText tells how far this computer's clock is from the NTP server's;
// nothing while asking or when no server is set.
func ntpText(n app.NTPStatus) string {
	switch {
	case n.Server == "":
		return ""
	case n.Err != "":
		return "no NTP server reachable — fine on a LAN"
	}
	return "clock within " + duration(abs(n.Offset)) + " of " + n.Server
}
