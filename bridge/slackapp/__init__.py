"""The Slack app (CONTRACT section 9): slash commands and buttons, behind slack-bolt, that let Slack
channels subscribe themselves, ask for status, show failures and mute."""
