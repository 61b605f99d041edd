-- ardour7-lua ardour_session.lua DIR NAME: a session on the dummy backend (48 kHz) with one MIDI
-- track playing the dmaudio plugin (GM drum map, fixed mode, seed 3) and a 4-second MIDI
-- region with notes 36, 38, 42, 46 on beats 1 to 4 (120 bpm: 0.5 s to 2 s). The model comes
-- from $DMAUDIO_MODEL and is saved in the plugin's state. The session range is not set here
-- (the Lua API cannot): the caller adds it to the .ardour file.
local dir, name = arg[1], arg[2]
AudioEngine:set_backend("None (Dummy)", "", "")
assert(create_session(dir, name, 48000), "cannot create the session")
local info = ARDOUR.LuaAPI.new_plugin_info("https://dmaudio.dev/plugins/dmaudio", ARDOUR.PluginType.LV2)
assert(not info:isnil(), "Ardour does not see the dmaudio LV2 plugin")
local midi, audio = ARDOUR.DataType("midi"), ARDOUR.DataType("audio")
local tracks = Session:new_midi_track(ARDOUR.ChanCount(midi, 1), ARDOUR.ChanCount(audio, 2), true,
    info, nil, nil, 1, "dmaudio", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal,
    true, false)
local track = nil
for t in tracks:iter() do track = t end
assert(track, "no MIDI track")

-- a MIDI region: bouncing the empty track without processing gives an empty one
local region = track:bounce_range(0, 4 * 48000, ARDOUR.InterThreadInfo(), ARDOUR.LuaAPI.nil_proc(),
    false, "notes")
assert(not region:isnil(), "bounce gave no region")
track:playlist():add_region(region, Temporal.timepos_t(0), 1, false)
local model = region:to_midiregion():midi_source(0):model()
local cmd = model:new_note_diff_command("notes")
local notes = {36, 38, 42, 46}
for i = 1, 4 do
    cmd:add(ARDOUR.LuaAPI.new_noteptr(9, Temporal.Beats(i, 0), Temporal.Beats(0, 480), notes[i], 127))
end
model:apply_command(Session, cmd)

-- controls, by index among the plugin's control inputs: 0 class, 1 mode, 2 seed
local plugin = track:nth_plugin(0)
assert(not plugin:isnil(), "no plugin on the track")
ARDOUR.LuaAPI.set_processor_param(plugin, 0, 0)
ARDOUR.LuaAPI.set_processor_param(plugin, 1, 0)
ARDOUR.LuaAPI.set_processor_param(plugin, 2, 3)
Session:save_state("", false, false, false, false, false)
print("session saved: " .. plugin:display_name() .. " on track " .. track:name())
close_session()
