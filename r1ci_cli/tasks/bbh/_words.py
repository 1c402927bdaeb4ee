"""A vocabulary of ordinary lowercase English words for word_sorting (chosen for this project, all distinct)."""

WORDS = sorted(set("""
abacus absent accept accord acorn admiral adverb aerial affix agenda alcove algebra almanac alpine amber
ambush anchor anvil apricot arbiter archive arctic armada arsenal artery asphalt atlas attic auburn avenue
badge ballad bamboo banner barley barrel basin beacon bedrock beetle bellow bicycle billow biscuit blanket
blossom bonnet border boulder bracket bramble breeze brigade brisket bronze buckle bucket bugle bulletin
cabin cactus caliber camera candle canopy canyon caravan carbon cargo carpet cascade castle catalog cavern
cedar cellar chalice channel chapel charter chimney cider cinder circuit citadel clarinet clover cobalt
comet compass copper corridor costume cotton counterpart cradle crater crescent crimson crystal cupboard
dagger dairy damsel dawn debris decade delta denim desert diamond dinghy divot dolphin domain dough dragon
drizzle dune dynamo eagle easel echo eclipse edict elbow ember emerald engine envoy epoch equator essay
estuary fable falcon famine fathom feather ferry fiddle figment filament flannel flask fleet fodder forest
fossil fountain fragment freckle frigate furnace gadget galaxy gallery garnet garrison gazette geyser
glacier glimmer goblet gondola gospel granite gravel griddle grotto guitar gypsum hammock harbor harvest
hatchet hazel helmet hermit hinge hollow horizon hostel hurdle iceberg idiom igloo inkwell insect island
ivory jackal jasmine javelin jester jigsaw journal jubilee juniper kayak kennel kernel kettle keystone
kindle kitten knapsack ladder lagoon lantern lattice ledger legend lemon lentil lever lilac linen lobster
locket lumber lyric magnet mallet mammoth mantle marble meadow melody mercury meteor mirror mitten monsoon
mortar mosaic muffin musket napkin nectar needle nickel nomad nugget oasis oatmeal obelisk ocean olive
onion opal orchard orchid outpost oven oyster paddle palace pamphlet panther parade parcel parsley pebble
pelican pendant pepper pewter pillar pilot pistol planet plaza plinth pocket polka pony porcelain portal
potato prairie prism pulley pumpkin puzzle quarry quartz quill quilt quiver rabbit radish raft rampart
ravine recipe reef relic ribbon ridge rivet robin rocket rooster rubble saddle saffron salmon sandal
satchel scarf scepter schooner scroll sequel shadow shelter shovel signal silhouette silver sketch sleigh
slipper socket sonnet spindle sponge spruce squirrel stable stanza steeple summit syndrome tablet tangent
tapestry tavern teapot temple thicket thimble thistle thunder timber tinsel token topaz torrent trellis
tribune trinket trophy trumpet tulip tundra turnip tweed umbrella undertow unicorn uniform urchin utensil
valley vapor velvet venture verdict vessel village vinegar violin vortex voyage wafer wagon walnut wander
warden wattle weasel whisker widget willow window winter wizard wombat yarrow yeoman yonder zenith zephyr
zigzag zinnia
""".split()))
