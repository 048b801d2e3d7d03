"""The screens the golden images show: one ``Screen`` per state the handset can be in.

``scripts/goldens`` draws each into ``tests/golden/screens/<name>.png``; ``test_golden.py``
draws them again and compares pixel for pixel. A change to the renderer (or to a screen's
content here) shows up as a failed comparison; look at the new picture, and if it is right,
run ``scripts/goldens`` and commit the images.
"""

from peerline.ui.render import KEY_CHANGED, VERIFIED
from peerline.ui.screens import (
    AlertScreen,
    CallScreen,
    ComposeScreen,
    DialScreen,
    IdleScreen,
    MenuScreen,
    Screen,
    StatusBar,
    TextScreen,
)

NUMBER = "4821 5590 1736"
CALLER = "7390 0012 4455"
ON = StatusBar(clock="09:41", online=True)
MENU = (
    "Contacts",
    "History",
    "Messages (2)",
    "New message",
    "Speed dial",
    "Do not disturb: off",
    "Forward: off",
    "Volume",
    "Brightness",
    "Network",
    "My number",
)

GOLDEN: dict[str, Screen] = {
    "idle": IdleScreen(status=ON, name="Front desk", number=NUMBER),
    "idle-extension": IdleScreen(status=ON, name="Front desk", number=NUMBER, extension="201"),
    "idle-offline": IdleScreen(
        status=StatusBar(clock="09:41", online=False), name="Front desk", number=NUMBER
    ),
    "idle-relayed-dnd": IdleScreen(
        status=StatusBar(clock="23:05", online=True, relayed=True, dnd=True),
        name="Home office",
        number=NUMBER,
    ),
    "idle-missed-unread": IdleScreen(
        status=StatusBar(clock="14:20", online=True, missed=2, unread=3),
        name="Front desk",
        number=NUMBER,
        note="2 missed calls",
    ),
    "idle-toast": IdleScreen(status=ON, name="Front desk", number=NUMBER, note="sending"),
    "dial-empty": DialScreen(status=ON, digits="", hint="# call  * delete"),
    "dial-digits": DialScreen(status=ON, digits="4821 5", hint="# call  * delete"),
    "dial-speed-entry": DialScreen(status=ON, digits="4821 5590 173", hint="# ok  * delete"),
    "dial-extension": DialScreen(status=ON, digits="201", hint="# call  * delete"),
    "dial-message-to": DialScreen(status=ON, digits="", hint="Message to: number"),
    "calling": CallScreen(title="Calling", who=CALLER, hint="* cancel"),
    "ringing": CallScreen(title="Ringing", who=CALLER, hint="* cancel"),
    "incoming-new": CallScreen(
        title="Incoming call", who=CALLER, detail="Reception ?", hint="# answer  * decline"
    ),
    "incoming-known": CallScreen(
        title="Incoming call", who=CALLER, detail="Reception", hint="# answer  * decline"
    ),
    "incoming-verified": CallScreen(
        title="Incoming call",
        who=CALLER,
        detail=f"Reception {VERIFIED}",
        hint="# answer  * decline",
    ),
    "incoming-key-changed": CallScreen(
        title="Incoming call",
        who=CALLER,
        detail=f"Reception {KEY_CHANGED}",
        hint="# answer  * decline",
    ),
    "alert-key-changed": AlertScreen(
        title="! KEY CHANGED !",
        lines=("Reception", CALLER, "new key: 9b1d15b6", "reset or impostor?"),
        hint="# ok  * end call",
    ),
    "in-call": CallScreen(
        title="In call",
        who=CALLER,
        detail="Reception",
        timer="0:42",
        sas="042 917",
        path="direct",
        bars=4,
    ),
    "in-call-relayed-poor": CallScreen(
        title="In call", who=CALLER, timer="12:03", sas="511 208", path="relay", bars=1
    ),
    "in-call-muted": CallScreen(
        title="In call", who=CALLER, timer="1:15", sas="042 917", path="direct", bars=3, muted=True
    ),
    "in-call-waiting": CallScreen(
        title="In call",
        who=CALLER,
        detail=f"Reception {VERIFIED}",
        timer="3:07",
        sas="042 917",
        path="direct",
        bars=4,
        other="wait 4821 5590 1736 ?",
        hint="# answer  * reject",
    ),
    "in-call-one-held": CallScreen(
        title="In call",
        who=NUMBER,
        detail="Front desk",
        timer="0:12",
        sas="511 208",
        path="relay",
        bars=3,
        other=f"hold Reception {VERIFIED}",
    ),
    "in-call-key-changed": CallScreen(
        title="In call",
        who=CALLER,
        detail=f"Reception {KEY_CHANGED}",
        timer="0:05",
        sas="386 420",
        path="direct",
        bars=4,
        hint="KEY CHANGED",
    ),
    "on-hold": CallScreen(
        title="On hold", who=CALLER, detail=f"Reception {VERIFIED}", hint="# resume"
    ),
    "conference": CallScreen(
        title="Conference",
        who=CALLER,
        detail=f"Reception {VERIFIED}",
        timer="8:40",
        sas="042 917",
        path="direct",
        bars=4,
        other="+ Front desk",
    ),
    "held-by-far-end": CallScreen(
        title="Held by far end", who=CALLER, detail="Reception", timer="2:10", bars=4
    ),
    "call-menu": MenuScreen(
        title="Call",
        items=("Swap", "Conference", "Complete transfer", "Mute", "SAS 042 917 ok?", "Hang up"),
        selected=2,
        hint="5 ok  * back",
    ),
    "dial-transfer": DialScreen(status=ON, digits="4821 5590 1736", hint="# transfer  * delete"),
    "dial-new-call": DialScreen(status=ON, digits="", hint="New call: number"),
    "sas-confirm": TextScreen(
        title="SAS 042 917",
        lines=("Did 7390 0012 4455", "read 042 917 to you?", "Only then press #."),
        hint="# yes  * no",
    ),
    "call-ended": CallScreen(title="Call ended", who=CALLER, detail="busy"),
    "menu": MenuScreen(title="Menu", items=MENU, selected=0, hint="5 ok  * back"),
    "menu-scrolled": MenuScreen(title="Menu", items=MENU, selected=8, hint="5 ok  * back"),
    "contacts": MenuScreen(
        title="Contacts", items=(NUMBER, CALLER, "201"), selected=1, hint="5 ok  * back"
    ),
    "history": MenuScreen(
        title="History",
        items=(
            "!7390 0012 4455 ?",
            f"<Reception {VERIFIED}",
            ">201 ?",
            "xFront desk",
            f"*Home {KEY_CHANGED}",
        ),
        selected=0,
        hint="missed 14:20",
    ),
    "messages": MenuScreen(
        title="Messages",
        items=("<7390 0012 4455 lunch?", ">4821 5590 1736 on my way"),
        selected=0,
        hint="5 ok  * back",
    ),
    "message-read": TextScreen(
        title="From 7390 0012 4455",
        lines=("Lunch at noon? The", "usual place, ground", "floor."),
        hint="# reply  * back",
    ),
    "compose": ComposeScreen(
        title="To 4821 5590 1736", text="On my wa", pending="a", mode="abc", hint="hold # send"
    ),
    "compose-upper": ComposeScreen(title="To 201", text="OK", pending=None, mode="ABC"),
    "speed-dial": MenuScreen(
        title="Speed dial",
        items=("2: 4821 5590 1736", "3: 201", "4: -", "5: -"),
        selected=0,
        hint="5 ok  * back",
    ),
    "volume": MenuScreen(
        title="Volume",
        items=tuple(f"Volume {v}" for v in range(11)),
        selected=7,
        hint="5 ok  * back",
    ),
    "network": TextScreen(
        title="Network",
        lines=(
            "Directory: joined",
            "Role: client",
            "Nodes known: 14",
            "Relays: 3",
            "Seen at 198.51.100.7:",
            "31000",
        ),
        hint="* back",
    ),
    "my-number": TextScreen(
        title="My number", lines=(NUMBER, "Front desk", "extension 201"), hint="* back"
    ),
    "idle-forwarded": IdleScreen(
        status=StatusBar(clock="18:30", online=True, forwarded=True, dnd=True),
        name="Front desk",
        number=NUMBER,
        note="fwd to 7390 0012 4455",
    ),
    "volume-shown": IdleScreen(
        status=StatusBar(clock="09:41", online=True, volume=5), name="Front desk", number=NUMBER
    ),
}
