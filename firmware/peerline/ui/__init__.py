"""The handset: what a person does with keys and the hook, and what the screen and LEDs show.

Pure, like the protocol core: machines fed with edges, phone events and times, that hand out
phone commands, screens and LED states. The adapters (``peerline.adapters``) and the shell
(``peerline.app``) do the I/O."""
