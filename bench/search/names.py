"""Realistic-looking names for a generated catalog: word lists, some with diacritics.

Song titles draw on a few hundred common words chosen with Zipf-like weights (so "the"
is in a quarter of the titles and "love" in thousands, as in real catalogs) plus
invented words (so the vocabulary is large and typos have near neighbours); artist
names are people, bands and invented words.  Everything comes from one seeded
``random.Random``: the same seed gives the same catalog.
"""

from __future__ import annotations

import itertools
import random


def words(text: str) -> list[str]:
    return text.split()


#: The most common title words first (Zipf rank order); the rest are shuffled behind them.
COMMON_WORDS = words("the you my me i love of in a to your on it all for and be we")
TITLE_WORDS = words(
    """
night heart baby girl time life day dream fire light world home rain blue
gold summer sun moon star road city river sky wild young free dance song music
feel tonight forever never always down away back little blue black white red
midnight morning evening yesterday tomorrow paradise heaven angel devil ghost
shadow mirror window door wall bridge train highway ocean sea shore island
mountain valley garden flower rose lily autumn winter spring storm thunder
lightning wind snow ice cold warm sweet bitter honey sugar candy wine whiskey
diamond silver crystal stone glass paper gold electric neon radio satellite
rocket space planet galaxy comet echo silence noise whisper scream cry smile
kiss touch hold run fall rise fly burn shine break wake sleep stay leave
come go lost found alone together hello goodbye sorry please thank yes no
better best last first only real true wrong right crazy lonely happy sad
beautiful broken golden hollow secret hidden simple perfect strange
danger fever desire memory promise story letter secret reason answer question
kingdom empire queen king prince princess soldier hunter stranger lover friend
mother father brother sister child children people family
street avenue boulevard station harbour airport hotel motel cafe bar
party weekend holiday vacation sunday monday friday saturday
rhythm blues soul groove beat funk disco boogie rock roll jazz swing
ballad anthem lullaby serenade symphony prelude overture finale interlude
"""
)
DIACRITIC_WORDS = words(
    """
café déjà rêverie naïve señorita mañana corazón canción noël crème brûlée
fiancée résumé über schön mädchen straße ångström fjäll sjö kärlek
niño año música días lágrimas coração saudade ação são françois
"""
)
FIRST_NAMES = words(
    """
James Mary John Linda Robert Michael Sarah David Emma Olivia Noah Liam Mia Ava
Lucas Hugo Léa Chloé Zoë Renée Beyoncé José Inés Mía Björn Søren Åsa Jürgen
Łukasz Małgorzata Dvořák Ağca Çelik François Amélie Noémie Raphaël Joaquín
Ana Sofía Camila Mateo Yuki Hana Kenji Aiko Priya Arjun Omar Layla Amara
Kofi Ama Tariq Ines Nadia Ivan Olga Sasha Mira Paloma Kito Aurora Nina Leo
"""
)
LAST_NAMES = words(
    """
Smith Johnson Williams Brown Jones Garcia Miller Davis Martinez Lopez Wilson
Anderson Taylor Thomas Moore Jackson Martin Lee Perez Thompson White Harris
Müller Schröder Núñez Peña Muñoz Gonçalves Ångström Øberg Ødegaard Nyström
Åkesson Dubois Lefèvre Béranger Hernández Rodríguez González Jiménez Kowalski
Nowak Novák Dvořák Horváth Güneş Öztürk Şahin Okafor Mensah Reyes Vale
Tanaka Suzuki Sato Kim Park Chen Wang Singh Patel Khan Haddad Rossi Bianchi
"""
)
BAND_NOUNS = words(
    """
Wolves Tigers Kings Queens Saints Sinners Lovers Strangers Ghosts Angels
Machines Robots Pilots Sailors Travellers Dreamers Rebels Ramblers Drifters
Brothers Sisters Hearts Stones Echoes Shadows Lights Flames Waves Rivers
"""
)
BAND_ADJECTIVES = words(
    """
Black White Red Blue Golden Silver Electric Velvet Crimson Neon Midnight
Broken Wild Lonely Happy Strange Hollow Secret Northern Southern Eastern Western
"""
)
_ONSETS = words("b br c ch cl d dr f fl g gr h j k kr l m n p pl qu r s sh st t tr v w z")
_VOWELS = words("a e i o u a e i o u ay ee oo io ia ea")
_CODAS = ["", "", "", "n", "r", "l", "s", "x", "th", "nd", "ck", "m"]
SUFFIXES = ["", "", "", "", "", "", " - Remastered", " (Live)", " - Radio Edit", " (Acoustic)"]


def _zipf_weights(n: int, s: float = 1.0) -> list[float]:
    return list(itertools.accumulate(1 / (rank**s) for rank in range(1, n + 1)))


class NameMaker:
    """Names from word lists and invented words; Zipf-weighted so some words are common."""

    def __init__(self, rng: random.Random, invented: int) -> None:
        self.rng = rng
        rest = TITLE_WORDS + DIACRITIC_WORDS
        rng.shuffle(rest)
        self.words = COMMON_WORDS + rest
        self.word_weights = _zipf_weights(len(self.words), 1.0)
        seen: set[str] = set()
        while len(seen) < invented:
            seen.add(self._invent())
        self.invented = sorted(seen)
        rng.shuffle(self.invented)
        self.invented_weights = _zipf_weights(len(self.invented), 0.7)

    def _invent(self) -> str:
        syllables = self.rng.choice((1, 2, 2, 2, 3, 3))
        return "".join(
            self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)
            for _ in range(syllables)
        )

    def word(self) -> str:
        return self.rng.choices(self.words, cum_weights=self.word_weights)[0]

    def made_up(self) -> str:
        return self.rng.choices(self.invented, cum_weights=self.invented_weights)[0]

    def title_word(self) -> str:
        return self.made_up() if self.rng.random() < 0.2 else self.word()

    def title(self, max_words: int = 4) -> str:
        count = self.rng.choice((1, 1, 2, 2, 2, 3, 3, 4)[: 2 * max_words])
        words = [self.title_word() for _ in range(count)]
        return " ".join(w.capitalize() for w in words)

    def track(self) -> str:
        return self.title() + self.rng.choice(SUFFIXES)

    def album(self) -> str:
        pattern = self.rng.random()
        if pattern < 0.1:
            return f"{self.title(2)} of {self.title(2)}"
        return self.title(3)

    def artist(self) -> str:
        r = self.rng
        pattern = r.random()
        if pattern < 0.4:
            return f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"
        if pattern < 0.55:
            return f"The {r.choice(BAND_ADJECTIVES)} {r.choice(BAND_NOUNS)}"
        if pattern < 0.8:
            return self.made_up().capitalize()
        if pattern < 0.9:
            return f"{self.made_up().capitalize()} {self.made_up().capitalize()}"
        return f"{r.choice(FIRST_NAMES)} {self.made_up().capitalize()}"
